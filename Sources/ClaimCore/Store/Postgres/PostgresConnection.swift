#if canImport(Glibc)
import Glibc
#endif

/// One connection speaking PostgreSQL's frontend/backend protocol v3
/// (https://www.postgresql.org/docs/15/protocol.html) over `NetworkStream`: start-up with TLS per sslmode,
/// password / MD5 / SCRAM-SHA-256 authentication, and the extended query protocol with the unnamed statement and
/// portal only, text format, every value a bound parameter. Nothing outlives a Sync but an open transaction, so it
/// works through a transaction-mode pooler (PgBouncer, Supabase's pooler).
///
/// Every backend message is decoded once by `MessageReader` (within a byte budget per answer) and handed to the
/// state machine of the phase: `AuthenticationStateMachine` during start-up, `ExtendedQueryStateMachine` for each
/// round trip of statements. This class only moves bytes between them and the socket. Every error it throws has
/// the configured password removed from the server's text.
final class PostgresConnection {
    private let stream: NetworkStream
    private let password: String?
    private var reader = MessageReader()
    private var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    /// Statements to send before the next query's own, whose results nobody reads (BEGIN, SET …).
    private var queued: [(sql: String, parameters: [String?])] = []
    /// True once start-up succeeded and until the session ends; only then is Terminate sent.
    private var usable = false
    /// ReadyForQuery's status: idle, in a transaction, or in a failed transaction.
    private(set) var transactionStatus = BackendMessage.TransactionStatus.idle
    /// The SCRAM keys the login used, once the server proved it knows them (nil for other methods).
    private(set) var scramKeys: SCRAMSHA256.Keys?

    /// True while the session is open and the server has sent nothing since the last round trip: a kept
    /// connection that may carry the next one. A server that restarted, a pooler that closed the connection and an
    /// idle-session timeout all leave something readable (FATAL, FIN, close_notify).
    var isReusable: Bool { usable && stream.isQuiet }

    /// Bounds every wait from now on.
    var deadline: Deadline {
        get { stream.deadline }
        set { stream.deadline = newValue }
    }

    /// Where a verifying TLS connection finds its trusted CAs: `sslrootcert`, else SSL_CERT_FILE / SSL_CERT_DIR,
    /// else the system's CA directory.
    struct TrustedCAs {
        var file: String?
        var directory: String?
    }

    private enum TLSPlan: Equatable {
        case off
        /// Ask; fall back to plain text when the server says no.
        case ifOffered
        /// Insist; `verify` and `checkHost` as sslmode says.
        case required(verify: Bool, checkHost: Bool)
    }

    private init(stream: NetworkStream, password: String?) {
        self.stream = stream
        self.password = password
    }

    deinit {
        if usable {
            // Best effort: a Terminate lets the server end the session without logging an unexpected EOF
            // (https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-TERMINATION).
            stream.deadline = Deadline(ms: 100)
            try? stream.writeAll(FrontendMessage.terminate(), phase: "terminating")
        }
    }

    /// Connects, negotiates TLS as `url.sslMode` says and authenticates, all within `url.connectTimeoutMs` (and
    /// before `answerBy`, an invocation's answer-by time, when that comes first).
    /// - Throws: `PostgresError`; `.network` kinds for no server, `.server` for a refused login or database.
    static func connect(_ url: PostgresURL, cas: TrustedCAs, answerBy: Deadline? = nil) throws(PostgresError)
        -> PostgresConnection
    {
        do throws(PostgresError) {
            return try connectOnce(url, cas: cas, deadline: Deadline(ms: url.connectTimeoutMs, answerBy: answerBy))
        } catch {
            throw error.redacting(url.password)
        }
    }

    private static func connectOnce(_ url: PostgresURL, cas: TrustedCAs, deadline: Deadline) throws(PostgresError)
        -> PostgresConnection
    {
        let rootCert = url.sslRootCert.map { TrustedCAs(file: $0, directory: nil) }
        switch url.sslMode {
        case .disable:
            return try attempt(url, .off, cas, deadline)
        case .allow:
            // libpq: plain first; TLS only when the server refused that (e.g. a `hostssl`-only pg_hba.conf).
            do throws(PostgresError) {
                return try attempt(url, .off, cas, deadline)
            } catch  where error.kind == .server && error.sqlState == "28000" {
                return try attempt(url, .required(verify: false, checkHost: false), cas, deadline)
            }
        case .prefer:
            // libpq: TLS when offered; a failed handshake falls back to plain text.
            do throws(PostgresError) {
                return try attempt(url, .ifOffered, cas, deadline)
            } catch  where error.kind == .network(.tls) {
                return try attempt(url, .off, cas, deadline)
            }
        case .require:
            // libpq verifies the chain under `require` when a root certificate is given.
            let verify = rootCert != nil
            return try attempt(url, .required(verify: verify, checkHost: false), rootCert ?? cas, deadline)
        case .verifyCA:
            return try attempt(url, .required(verify: true, checkHost: false), rootCert ?? cas, deadline)
        case .verifyFull:
            return try attempt(url, .required(verify: true, checkHost: true), rootCert ?? cas, deadline)
        }
    }

    private static func attempt(_ url: PostgresURL, _ tls: TLSPlan, _ cas: TrustedCAs, _ deadline: Deadline)
        throws(PostgresError) -> PostgresConnection
    {
        let stream: NetworkStream
        do throws(NetworkFailure) {
            stream = try NetworkStream.connect(host: url.host, port: url.port, deadline: deadline)
        } catch {
            throw PostgresError(error)
        }
        let connection = PostgresConnection(stream: stream, password: url.password)
        if tls != .off { try connection.negotiateTLS(url, tls, cas) }
        try connection.startUp(url)
        connection.usable = true
        return connection
    }

    // MARK: - Start-up

    /// SSLRequest, then the TLS handshake if the server answers S
    /// (https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.12).
    private func negotiateTLS(_ url: PostgresURL, _ plan: TLSPlan, _ cas: TrustedCAs) throws(PostgresError) {
        try send(FrontendMessage.sslRequest())
        var answer = [UInt8](repeating: 0, count: 2)
        let count: Int
        do throws(NetworkFailure) {
            count = try stream.read(into: &answer, phase: "waiting for the SSLRequest answer")
        } catch {
            throw PostgresError(error)
        }
        if count == 0 { throw PostgresError(.network(.reset), "server closed the connection at SSLRequest") }
        // More than one byte before the handshake could be injected plain text (CVE-2021-23222): refuse it.
        guard count == 1 else { throw PostgresError(.protocolViolation, "unexpected data after the SSLRequest answer") }
        switch answer[0] {
        case UInt8(ascii: "S"):
            break
        case UInt8(ascii: "N"):
            if plan == .ifOffered { return }
            throw PostgresError(.tlsRefused, "the server does not offer TLS, and sslmode=\(url.sslMode.rawValue)")
        default:
            throw PostgresError(.protocolViolation, "unexpected answer to SSLRequest")
        }
        let (verify, checkHost) =
            if case .required(let verify, let checkHost) = plan { (verify, checkHost) } else { (false, false) }
        do throws(NetworkFailure) {
            // P-256 first: PostgreSQL up to 17 does ECDHE on P-256 only (ssl_ecdh_curve), so offering it first
            // saves TLS 1.3's HelloRetryRequest round trip.
            try stream.startTLS(
                host: url.host, isIPLiteral: url.isIPLiteral, verify: verify, checkHost: checkHost, caFile: cas.file,
                caDir: cas.directory, groups: "P-256:X25519:P-384")
        } catch {
            throw PostgresError(error)
        }
    }

    /// StartupMessage, then the authentication exchange up to the first ReadyForQuery, as the state machine says
    /// (https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-START-UP).
    private func startUp(_ url: PostgresURL) throws(PostgresError) {
        var parameters = [
            ("user", url.user), ("database", url.database), ("application_name", url.applicationName),
            ("client_encoding", "UTF8"),
        ]
        if let options = url.options { parameters.append(("options", options)) }
        reader.startExchange()
        try send(FrontendMessage.startup(parameters))
        var machine = AuthenticationStateMachine(
            user: url.user, password: url.password, scramKeys: url.scramKeys, allowed: url.requireAuth,
            nonce: SCRAMSHA256.newNonce)
        while true {
            switch machine.received(try readMessage()) {
            case .send(let bytes): try send(bytes)
            case .wait: continue
            case .ready(let status):
                transactionStatus = status
                scramKeys = machine.verifiedSCRAMKeys
                return
            case .fail(let error): throw error
            }
        }
    }

    // MARK: - Queries

    /// Sends `sql` ahead of the next query, in the same round trip; its result is not read (only its error).
    func queue(_ sql: String, _ parameters: [String?] = []) {
        queued.append((sql, parameters))
    }

    /// Forgets queued statements that were never sent (a transaction abandoned before its first round trip).
    func discardQueued() {
        queued = []
    }

    /// Runs one statement (after anything queued) and returns its rows as text columns (NULL → nil).
    @discardableResult
    func query(_ sql: String, _ parameters: [String?] = []) throws(PostgresError) -> [[String?]] {
        try batch([(sql, parameters)]).first ?? []
    }

    /// Sends whatever is queued, with nothing after it.
    func flush() throws(PostgresError) {
        _ = try batch([])
    }

    /// Runs the queued statements and then `statements` in one round trip: Parse/Bind/Execute each with the
    /// unnamed statement and portal, then one Sync
    /// (https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY). After an error the server
    /// skips the rest up to the Sync, and the first error is thrown, with its statement's SQL.
    /// - Returns: the rows of each of `statements` (not of the queued ones).
    func batch(_ statements: [(sql: String, parameters: [String?])]) throws(PostgresError) -> [[[String?]]] {
        guard usable else { throw PostgresError(.network(.reset), "the connection is closed") }
        let all = queued + statements
        let skipped = queued.count
        queued = []
        if all.isEmpty { return [] }
        var out: [UInt8] = []
        for statement in all {
            out += FrontendMessage.parse(statement.sql)
            out += FrontendMessage.bind(statement.parameters)
            out += FrontendMessage.execute()
        }
        out += FrontendMessage.sync()
        do throws(PostgresError) {
            reader.startExchange()
            try send(out)
            var machine = ExtendedQueryStateMachine(statementCount: all.count)
            while true {
                switch machine.received(try readMessage()) {
                case .wait: continue
                case .fail(let error): throw error
                case .ready(let status):
                    transactionStatus = status
                    if let failure = machine.failure {
                        var error = failure.error
                        error.sql = failure.statement.map { all[$0].sql }
                        throw error
                    }
                    return Array(machine.results.dropFirst(skipped))
                }
            }
        } catch {
            if error.endsSession { usable = false }
            throw error.redacting(password)
        }
    }

    // MARK: - I/O

    private func send(_ bytes: [UInt8]) throws(PostgresError) {
        do throws(NetworkFailure) {
            try stream.writeAll(bytes, phase: "sending to the server")
        } catch {
            throw PostgresError(error)
        }
    }

    private func readMessage() throws(PostgresError) -> BackendMessage {
        while true {
            if let message = try reader.next() { return message }
            let count: Int
            do throws(NetworkFailure) {
                count = try stream.read(into: &buffer, phase: "waiting for the server")
            } catch {
                throw PostgresError(error)
            }
            if count == 0 { throw PostgresError(.network(.reset), "the server closed the connection") }
            reader.append(buffer[0..<count])
        }
    }
}
