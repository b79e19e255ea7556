import Testing

@testable import ClaimCore

/// One round trip of statements without a socket: every (state, message) pair against a table written out by hand,
/// then whole answers (rows per statement, the first error with its statement, a FATAL error).
@Suite struct ExtendedQueryStateMachineTests {
    static let messages: [(name: String, message: BackendMessage)] = [
        ("parseComplete", .parseComplete),
        ("bindComplete", .bindComplete),
        ("dataRow", .dataRow(["a", nil])),
        ("commandComplete", .commandComplete),
        ("emptyQueryResponse", .emptyQueryResponse),
        ("readyForQuery", .readyForQuery(.inTransaction)),
        ("error", .error(.init(severity: "ERROR", sqlState: "23505", message: "duplicate key"))),
        ("fatal", .error(.init(severity: "FATAL", sqlState: "57P01", message: "terminating connection"))),
        ("notice", .notice),
        ("parameterStatus", .parameterStatus),
        ("notification", .notification),
        ("authenticationOk", .authentication(.ok)),
        ("backendKeyData", .backendKeyData),
        ("negotiateProtocolVersion", .negotiateProtocolVersion),
        ("noData", .noData),
        ("portalSuspended", .portalSuspended),
        ("rowDescription", .rowDescription),
        ("parameterDescription", .parameterDescription),
    ]

    enum Outcome: Equatable {
        case wait(then: ExtendedQueryStateMachine.State)
        case ready
        case fail(PostgresError.Kind)
    }

    /// The states of a round trip of two statements, with the legal moves of each; every other message fails with
    /// `.protocolViolation`. Asynchronous messages (notice, ParameterStatus, notification) keep the state.
    static let table: [(state: ExtendedQueryStateMachine.State, legal: [String: Outcome])] = [
        (.parsing(0), ["parseComplete": .wait(then: .binding(0))]),
        (.binding(0), ["bindComplete": .wait(then: .executing(0))]),
        (
            .executing(0),
            [
                "dataRow": .wait(then: .executing(0)), "commandComplete": .wait(then: .parsing(1)),
                "emptyQueryResponse": .wait(then: .parsing(1)),
            ]
        ),
        (.parsing(1), ["parseComplete": .wait(then: .binding(1))]),
        (.binding(1), ["bindComplete": .wait(then: .executing(1))]),
        (
            .executing(1),
            [
                "dataRow": .wait(then: .executing(1)), "commandComplete": .wait(then: .synced),
                "emptyQueryResponse": .wait(then: .synced),
            ]
        ),
        (.synced, ["readyForQuery": .ready]),
        (.skipping, ["readyForQuery": .ready]),
        (.done, [:]),
        (.failed, [:]),
    ]

    /// A machine for two statements, driven into `state` by a legal answer.
    static func machine(in state: ExtendedQueryStateMachine.State) -> ExtendedQueryStateMachine {
        var m = ExtendedQueryStateMachine(statementCount: 2)
        let one: [BackendMessage] = [.parseComplete, .bindComplete, .commandComplete]
        let path: [BackendMessage] =
            switch state {
            case .parsing(0): []
            case .binding(0): [.parseComplete]
            case .executing(0): [.parseComplete, .bindComplete]
            case .parsing(1): one
            case .binding(1): one + [.parseComplete]
            case .executing(1): one + [.parseComplete, .bindComplete]
            case .synced: one + one
            case .skipping: [.error(.init(severity: "ERROR", message: "x"))]
            case .done: one + one + [.readyForQuery(.idle)]
            default: [.authentication(.ok)]
            }
        for message in path { _ = m.received(message) }
        return m
    }

    @Test(arguments: 0..<10)
    func everyMessageInState(row: Int) {
        let (state, legal) = ExtendedQueryStateMachineTests.table[row]
        for (name, message) in ExtendedQueryStateMachineTests.messages {
            var m = ExtendedQueryStateMachineTests.machine(in: state)
            #expect(m.state == state)
            let action = m.received(message)
            let live = state != .done && state != .failed
            var expected = legal[name] ?? .fail(.protocolViolation)
            if live && ["notice", "parameterStatus", "notification"].contains(name) {
                expected = .wait(then: state)
            } else if live && name == "error" {
                expected = .wait(then: .skipping)
            } else if live && name == "fatal" {
                expected = .fail(.server)
            }
            let actual: Outcome
            switch action {
            case .wait: actual = .wait(then: m.state)
            case .ready: actual = .ready
            case .fail(let error): actual = .fail(error.kind)
            }
            #expect(actual == expected, "\(state) + \(name)")
            if case .fail = action { #expect(m.state == .failed) }
            if case .ready = action { #expect(m.state == .done) }
        }
    }

    @Test func rowsPerStatement() {
        var m = ExtendedQueryStateMachine(statementCount: 3)
        let answer: [BackendMessage] = [
            .parseComplete, .bindComplete, .commandComplete,
            .parseComplete, .bindComplete, .dataRow(["1", nil]), .notice, .dataRow(["2", "b"]), .commandComplete,
            .parseComplete, .bindComplete, .emptyQueryResponse,
        ]
        for message in answer { #expect(m.received(message) == .wait) }
        #expect(m.received(.readyForQuery(.inTransaction)) == .ready(.inTransaction))
        #expect(m.results == [[], [["1", nil], ["2", "b"]], []])
        #expect(m.failure == nil)
    }

    @Test func firstErrorKeepsItsStatement() {
        var m = ExtendedQueryStateMachine(statementCount: 3)
        for message in [BackendMessage.parseComplete, .bindComplete, .commandComplete, .parseComplete] {
            _ = m.received(message)
        }
        #expect(m.received(.error(.init(severity: "ERROR", sqlState: "40001", message: "first"))) == .wait)
        #expect(m.received(.error(.init(severity: "ERROR", sqlState: "XX000", message: "second"))) == .wait)
        #expect(m.received(.readyForQuery(.failedTransaction)) == .ready(.failedTransaction))
        #expect(m.failure?.statement == 1)
        #expect(m.failure?.error.sqlState == "40001")
        #expect(m.failure?.error.isTransient == true)
    }

    @Test func errorAfterTheLastStatementBelongsToTheSync() {
        var m = ExtendedQueryStateMachine(statementCount: 1)
        for message in [BackendMessage.parseComplete, .bindComplete, .commandComplete] { _ = m.received(message) }
        #expect(m.received(.error(.init(severity: "ERROR", sqlState: "23505", message: "deferred"))) == .wait)
        #expect(m.received(.readyForQuery(.idle)) == .ready(.idle))
        #expect(m.failure?.statement == nil)
    }

    @Test func readyForQueryBeforeEveryResultIsAViolation() {
        var m = ExtendedQueryStateMachine(statementCount: 2)
        for message in [BackendMessage.parseComplete, .bindComplete, .commandComplete] { _ = m.received(message) }
        guard case .fail(let error) = m.received(.readyForQuery(.idle)) else {
            Issue.record("one result for two statements must fail")
            return
        }
        #expect(error.kind == .protocolViolation)
        #expect(error.failure == .protocolViolation)
    }
}
