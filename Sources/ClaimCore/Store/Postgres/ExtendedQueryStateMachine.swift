/// One round trip of the extended query protocol as a pure state machine: for each statement the connection sends
/// Parse, Bind and Execute (unnamed statement and portal, no Describe), then one Sync
/// (https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY). What is legal where, and
/// nothing else is:
///
/// | state | legal messages |
/// |---|---|
/// | `parsing(i)` | ParseComplete (→ `binding(i)`) |
/// | `binding(i)` | BindComplete (→ `executing(i)`) |
/// | `executing(i)` | DataRow; CommandComplete or EmptyQueryResponse (→ `parsing(i + 1)`, or `synced` after the last) |
/// | `synced` | ReadyForQuery (→ `done`) |
/// | `skipping` | ReadyForQuery (→ `done`) |
/// | `done`, `failed` | nothing: the round trip is over |
///
/// An ErrorResponse is legal in every state before `done`: the server then skips to the Sync (`skipping`), and
/// the first error is the round trip's `failure`; a FATAL one ends the session at once. NoticeResponse,
/// ParameterStatus and NotificationResponse may arrive at any time before `done` (asynchronous messages).
struct ExtendedQueryStateMachine {
    /// Where the answer stands; the table above says what each state accepts.
    enum State: Equatable {
        /// Waiting for statement i's ParseComplete.
        case parsing(Int)
        /// Waiting for statement i's BindComplete.
        case binding(Int)
        /// Statement i's rows, up to its CommandComplete.
        case executing(Int)
        /// Every statement answered: waiting for the Sync's ReadyForQuery.
        case synced
        /// After an ErrorResponse: the server skips to the Sync.
        case skipping
        /// ReadyForQuery received.
        case done
        /// The session is over.
        case failed
    }

    /// What the connection does next.
    enum Action: Equatable {
        /// Read on.
        case wait
        /// The round trip is over: `results` or `failure` say how it went.
        case ready(BackendMessage.TransactionStatus)
        /// The session is over (a FATAL error, or a server breaking the protocol); close the connection.
        case fail(PostgresError)
    }

    /// Statements sent in this round trip (queued ones included).
    let statementCount: Int
    private(set) var state: State
    /// Each statement's rows, in order.
    private(set) var results: [[[String?]]] = []
    private var rows: [[String?]] = []
    /// The first ErrorResponse, and the statement it belongs to (nil: the Sync's implicit commit).
    private(set) var failure: (error: PostgresError, statement: Int?)?

    init(statementCount: Int) {
        self.statementCount = statementCount
        state = statementCount == 0 ? .synced : .parsing(0)
    }

    /// Takes the next backend message: the new state, and what the connection must do.
    mutating func received(_ message: BackendMessage) -> Action {
        switch (state, message) {
        case (.done, _), (.failed, _):
            return fail("\(message.kind) after the round trip ended")
        case (_, .notice), (_, .parameterStatus), (_, .notification):
            return .wait
        case (_, .error(let fields)):
            let error = PostgresError(fields)
            if error.endsSession {
                state = .failed
                return .fail(error)
            }
            if failure == nil { failure = (error, currentStatement) }
            state = .skipping
            return .wait
        case (.parsing(let i), .parseComplete):
            state = .binding(i)
            return .wait
        case (.binding(let i), .bindComplete):
            state = .executing(i)
            return .wait
        case (.executing, .dataRow(let columns)):
            rows.append(columns)
            return .wait
        case (.executing(let i), .commandComplete), (.executing(let i), .emptyQueryResponse):
            results.append(rows)
            rows = []
            state = i + 1 < statementCount ? .parsing(i + 1) : .synced
            return .wait
        case (.synced, .readyForQuery(let status)), (.skipping, .readyForQuery(let status)):
            state = .done
            return .ready(status)
        case (_, .readyForQuery):
            return fail("ReadyForQuery after \(results.count) results for \(statementCount) statements")
        default:
            return fail("unexpected \(message.kind) in answer to statement \(results.count + 1) of \(statementCount)")
        }
    }

    /// The statement the server is answering now; nil once all are answered.
    private var currentStatement: Int? {
        switch state {
        case .parsing(let i), .binding(let i), .executing(let i): return i
        default: return nil
        }
    }

    private mutating func fail(_ message: String) -> Action {
        state = .failed
        return .fail(PostgresError(.protocolViolation, message))
    }
}
