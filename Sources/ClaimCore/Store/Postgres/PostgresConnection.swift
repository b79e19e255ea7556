import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

/// A failed PostgreSQL exchange: the server's SQLSTATE and message, or what went wrong on the way. Carries the SQL,
/// never the bound values (nor the server's DETAIL field, which quotes them: "Key (claimed_by)=(user-1)…").
struct PostgresError: Error, CustomStringConvertible {
    enum Kind: Equatable {
        /// An ErrorResponse (https://www.postgresql.org/docs/15/protocol-error-fields.html).
        case server
        /// The socket or TLS layer failed: refused, reset, closed, timed out, certificate rejected.
        case network(NetworkFailure.Kind)
        /// The peer sent something that is not PostgreSQL's protocol v3 as this client speaks it.
        case protocolViolation
        /// We cannot or will not authenticate: unsupported method, no password, wrong server signature.
        case authentication
        /// sslmode requires TLS and the server does not offer it.
        case tlsRefused
    }

    var kind: Kind
    var message: String
    var sqlState: String?
    /// The constraint a 23505 unique violation names (field `n`).
    var constraint: String?
    var severity: String?
    var sql: String?

    init(_ kind: Kind, _ message: String, sqlState: String? = nil) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
    }

    /// From an ErrorResponse's fields.
    init(fields: [UInt8: String]) {
        self.init(.server, fields[UInt8(ascii: "M")] ?? "unknown error", sqlState: fields[UInt8(ascii: "C")])
        constraint = fields[UInt8(ascii: "n")]
        severity = fields[UInt8(ascii: "V")] ?? fields[UInt8(ascii: "S")]
    }

    init(_ failure: NetworkFailure) {
        self.init(.network(failure.kind), failure.detail)
    }

    /// The session is over after this error: the server said FATAL/PANIC or the connection itself failed.
    var endsSession: Bool {
        switch kind {
        case .server: return severity == "FATAL" || severity == "PANIC"
        default: return true
        }
    }

    var description: String {
        let code = sqlState.map { "PostgreSQL error \($0): " } ?? "PostgreSQL connection: "
        return code + message + (sql.map { " in `\(PostgresError.oneLine($0))`" } ?? "")
    }

    private static func oneLine(_ sql: String) -> String {
        sql.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
    }

    // SQLSTATEs we branch on (https://www.postgresql.org/docs/15/errcodes-appendix.html).
    static let uniqueViolation = "23505"
    static let serializationFailure = "40001"
    static let deadlockDetected = "40P01"
    static let undefinedTable = "42P01"

    /// The contract error for a storage failure. Retryable conditions (no server, a server going away, too many
    /// connections, a lock not obtained in time) are 503s; what a retry cannot fix (authentication, a missing
    /// database, TLS verification) is `store_unavailable`.
    func claimError(context: String) -> ClaimError {
        let detail = "\(context): \(description)"
        switch kind {
        case .network(.tls), .network(.tlsSetup):
            return ClaimError(.storeUnavailable, "the claim database's TLS connection was refused", detail: detail)
        case .network:
            return ClaimError(
                .storeUnreachable, "the claim database cannot be reached; retry shortly", retryAfterSeconds: 1,
                detail: detail)
        case .tlsRefused:
            return ClaimError(.storeUnavailable, "the claim database does not offer TLS", detail: detail)
        case .authentication:
            return ClaimError(.storeUnavailable, "the claim database refused the login", detail: detail)
        case .protocolViolation:
            return ClaimError(.storeUnavailable, "the claim database's server is not PostgreSQL", detail: detail)
        case .server:
            break
        }
        let state = sqlState ?? ""
        switch state {
        case "28P01", "28000":
            return ClaimError(.storeUnavailable, "the claim database refused the login", detail: detail)
        case "3D000":
            return ClaimError(.storeUnavailable, "the claim database does not exist", detail: detail)
        case "53300", "55P03", "57014", PostgresError.serializationFailure, PostgresError.deadlockDetected:
            // too_many_connections, lock_not_available (lock_timeout), query_canceled (statement_timeout)
            return ClaimError(
                .storeBusy, "the claim store is busy; retry shortly", retryAfterSeconds: 1, detail: detail)
        case "57P01", "57P02", "57P03":
            // admin_shutdown, crash_shutdown, cannot_connect_now: the server is stopping or starting.
            return ClaimError(
                .storeUnreachable, "the claim database cannot be reached; retry shortly", retryAfterSeconds: 1,
                detail: detail)
        case "25006":
            return ClaimError(.storeUnavailable, "the claim database is read-only", detail: detail)
        case "53100":
            return ClaimError(.storeUnavailable, "the claim database's volume is full", detail: detail)
        default:
            if state.hasPrefix("08") {  // connection_exception
                return ClaimError(
                    .storeUnreachable, "the claim database cannot be reached; retry shortly", retryAfterSeconds: 1,
                    detail: detail)
            }
            return ClaimError(.storeUnavailable, "the claim database failed", detail: detail)
        }
    }
}

/// One connection speaking PostgreSQL's frontend/backend protocol v3
/// (https://www.postgresql.org/docs/15/protocol.html) over `NetworkStream`: start-up with TLS per sslmode,
/// password / MD5 / SCRAM-SHA-256 authentication, and the extended query protocol with the unnamed statement and
/// portal only, text format, every value a bound parameter. Nothing outlives a Sync but an open transaction, so it
/// works through a transaction-mode pooler (PgBouncer, Supabase's pooler).
final class PostgresConnection {
    private var stream: NetworkStream
    private var context: OpaquePointer?
    private var reader = MessageReader()
    private var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    /// Statements to send before the next query's own, whose results nobody reads (BEGIN, SET …).
    private var queued: [(sql: String, parameters: [String?])] = []
    /// True once start-up succeeded and until the session ends; only then is Terminate sent.
    private var usable = false
    /// ReadyForQuery's status: `I` idle, `T` in a transaction, `E` in a failed transaction.
    private(set) var transactionStatus = UInt8(ascii: "I")

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

    private init(stream: NetworkStream) {
        self.stream = stream
    }

    deinit {
        if usable {
            // Best effort: a Terminate lets the server end the session without logging an unexpected EOF
            // (https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-TERMINATION).
            stream.deadline = Deadline(ms: 100)
            try? stream.writeAll(Message.terminate(), phase: "terminating")
        }
        stream.close()
        SSL_CTX_free(context)
    }

    /// Connects, negotiates TLS as `url.sslMode` says and authenticates, all within `url.connectTimeoutMs`.
    /// - Throws: `PostgresError`; `.network` kinds for no server, `.server` for a refused login or database.
    static func connect(_ url: PostgresURL, cas: TrustedCAs) throws(PostgresError) -> PostgresConnection {
        let deadline = Deadline(ms: url.connectTimeoutMs)
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
        // From here the connection owns the socket: its deinit closes it if start-up fails.
        let connection = PostgresConnection(stream: stream)
        if tls != .off { try connection.negotiateTLS(url, tls, cas) }
        try connection.startUp(url)
        connection.usable = true
        return connection
    }

    // MARK: - Start-up

    /// SSLRequest, then the TLS handshake if the server answers S
    /// (https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.12).
    private func negotiateTLS(_ url: PostgresURL, _ plan: TLSPlan, _ cas: TrustedCAs) throws(PostgresError) {
        try send(Message.sslRequest())
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
        let verify: Bool
        let checkHost: Bool
        if case .required(let v, let c) = plan {
            (verify, checkHost) = (v, c)
        } else {
            (verify, checkHost) = (false, false)
        }
        do throws(NetworkFailure) {
            // P-256 first: PostgreSQL up to 17 does ECDHE on P-256 only (ssl_ecdh_curve), so offering it first
            // saves TLS 1.3's HelloRetryRequest round trip.
            let made = try NetworkStream.tlsContext(
                caFile: cas.file, caDir: cas.directory, verify: verify, groups: "P-256:X25519:P-384")
            context = made
            try stream.startTLS(context: made, host: url.host, isIPLiteral: url.isIPLiteral, checkHost: checkHost)
        } catch {
            throw PostgresError(error)
        }
    }

    /// StartupMessage and authentication, up to the first ReadyForQuery
    /// (https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-START-UP).
    private func startUp(_ url: PostgresURL) throws(PostgresError) {
        var parameters = [
            ("user", url.user), ("database", url.database), ("application_name", url.applicationName),
            ("client_encoding", "UTF8"),
        ]
        if let options = url.options { parameters.append(("options", options)) }
        try send(Message.startup(parameters))

        var scram: SCRAMSHA256?
        var scramVerified = false
        while true {
            let message = try readMessage()
            var body = MessageCursor(message.body)
            switch message.type {
            case UInt8(ascii: "R"):
                let code = try body.int32()
                switch code {
                case 0:  // AuthenticationOk
                    // A server that skips SCRAM's last step has not proven that it knows the password.
                    if scram != nil && !scramVerified {
                        throw PostgresError(.authentication, "server ended SCRAM without proving its identity")
                    }
                case 3:  // AuthenticationCleartextPassword
                    try send(Message.password(Array(try password(url).utf8)))
                case 5:  // AuthenticationMD5Password
                    let salt = try body.bytes(4)
                    let answer = try PostgresConnection.md5Password(user: url.user, password: password(url), salt: salt)
                    try send(Message.password(Array(answer.utf8)))
                case 10:  // AuthenticationSASL: the mechanisms offered
                    var mechanisms: [String] = []
                    while let name = try body.cString(), !name.isEmpty { mechanisms.append(name) }
                    // SCRAM-SHA-256-PLUS (channel binding) is offered over TLS too; plain SCRAM-SHA-256 with
                    // the "n" gs2 flag is what libpq does with channel_binding=disable.
                    guard mechanisms.contains("SCRAM-SHA-256") else {
                        throw PostgresError(
                            .authentication, "unsupported SASL mechanisms: \(mechanisms.joined(separator: ", "))")
                    }
                    guard let nonce = SCRAMSHA256.newNonce() else {
                        throw PostgresError(.authentication, "RAND_bytes failed for the SCRAM nonce")
                    }
                    let client = SCRAMSHA256(password: try password(url), clientNonce: nonce)
                    scram = client
                    try send(Message.saslInitialResponse("SCRAM-SHA-256", Array(client.clientFirstMessage.utf8)))
                case 11:  // AuthenticationSASLContinue: server-first-message
                    guard var client = scram else {
                        throw PostgresError(.protocolViolation, "SASLContinue out of turn")
                    }
                    let final: String
                    do throws(SCRAMSHA256.Failure) {
                        final = try client.clientFinalMessage(serverFirst: String(decoding: body.rest, as: UTF8.self))
                    } catch {
                        throw PostgresError(.authentication, "SCRAM: \(error.reason)")
                    }
                    scram = client
                    try send(Message.saslResponse(Array(final.utf8)))
                case 12:  // AuthenticationSASLFinal: server-final-message
                    guard let client = scram else { throw PostgresError(.protocolViolation, "SASLFinal out of turn") }
                    do throws(SCRAMSHA256.Failure) {
                        try client.verify(serverFinal: String(decoding: body.rest, as: UTF8.self))
                        scramVerified = true
                    } catch {
                        throw PostgresError(.authentication, "SCRAM: \(error.reason)")
                    }
                default:
                    // 2 Kerberos V5, 7 GSSAPI, 9 SSPI: not in a static binary without those libraries.
                    throw PostgresError(.authentication, "unsupported authentication method \(code)")
                }
            case UInt8(ascii: "Z"):
                transactionStatus = message.body.first ?? UInt8(ascii: "I")
                return
            case UInt8(ascii: "E"):
                throw PostgresError(fields: Message.errorFields(message.body))
            case UInt8(ascii: "S"), UInt8(ascii: "K"), UInt8(ascii: "N"), UInt8(ascii: "v"):
                // ParameterStatus, BackendKeyData, NoticeResponse, NegotiateProtocolVersion: nothing we use.
                continue
            default:
                throw PostgresError(
                    .protocolViolation, "unexpected message \(Message.name(message.type)) during start-up")
            }
        }
    }

    private func password(_ url: PostgresURL) throws(PostgresError) -> String {
        guard let password = url.password else {
            throw PostgresError(.authentication, "the server asks for a password and CLAIM_DATABASE_URL has none")
        }
        return password
    }

    /// "md5" + md5hex(md5hex(password + user) + salt)
    /// (https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.3).
    static func md5Password(user: String, password: String, salt: [UInt8]) throws(PostgresError) -> String {
        guard let inner = SCRAMSHA256.digest(Array((password + user).utf8), EVP_md5()),
            let outer = SCRAMSHA256.digest(Array(hex(inner).utf8) + salt, EVP_md5())
        else { throw PostgresError(.authentication, "OpenSSL could not compute MD5") }
        return "md5" + hex(outer)
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
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
    /// skips the rest up to the Sync, and the first error is thrown.
    /// - Returns: the rows of each of `statements` (not of the queued ones).
    func batch(_ statements: [(sql: String, parameters: [String?])]) throws(PostgresError) -> [[[String?]]] {
        guard usable else { throw PostgresError(.network(.reset), "the connection is closed") }
        let all = queued + statements
        let skipped = queued.count
        queued = []
        if all.isEmpty { return [] }
        var out: [UInt8] = []
        for statement in all {
            out += Message.parse(statement.sql)
            out += Message.bind(statement.parameters)
            out += Message.execute()
        }
        out += Message.sync()
        do throws(PostgresError) {
            try send(out)
            var results: [[[String?]]] = []
            var rows: [[String?]] = []
            var failure: PostgresError?
            while true {
                let message = try readMessage()
                switch message.type {
                case UInt8(ascii: "D"):
                    // Our statements return a row or a few; a server streaming rows would only exhaust memory.
                    guard rows.count < 1000 else {
                        throw PostgresError(.protocolViolation, "more than 1000 rows for one statement")
                    }
                    rows.append(try Message.dataRow(message.body))
                case UInt8(ascii: "C"), UInt8(ascii: "I"):  // CommandComplete, EmptyQueryResponse
                    results.append(rows)
                    rows = []
                case UInt8(ascii: "E"):
                    var error = PostgresError(fields: Message.errorFields(message.body))
                    error.sql = results.count < all.count ? all[results.count].sql : nil
                    if error.endsSession { throw error }
                    failure = failure ?? error
                case UInt8(ascii: "Z"):
                    transactionStatus = message.body.first ?? UInt8(ascii: "I")
                    if let failure { throw failure }
                    guard results.count == all.count else {
                        throw PostgresError(.protocolViolation, "\(results.count) results for \(all.count) statements")
                    }
                    return Array(results.dropFirst(skipped))
                case UInt8(ascii: "1"), UInt8(ascii: "2"), UInt8(ascii: "n"), UInt8(ascii: "t"), UInt8(ascii: "T"),
                    UInt8(ascii: "N"), UInt8(ascii: "S"), UInt8(ascii: "A"):
                    // ParseComplete, BindComplete, NoData, ParameterDescription, RowDescription, NoticeResponse,
                    // ParameterStatus, NotificationResponse.
                    continue
                default:
                    throw PostgresError(.protocolViolation, "unexpected message \(Message.name(message.type))")
                }
            }
        } catch {
            if error.endsSession { usable = false }
            throw error
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

/// One backend message: its type byte and its body (without the length).
struct BackendMessage: Equatable {
    var type: UInt8
    var body: [UInt8]
}

/// Splits received bytes into backend messages: a type byte, an Int32 length that counts itself, the body.
struct MessageReader {
    /// Our rows are a few hundred bytes; anything this large is not a server we want to talk to.
    static let maxMessageBytes = 1 << 20

    private var bytes: [UInt8] = []
    private var start = 0

    mutating func append(_ received: ArraySlice<UInt8>) {
        if start > 0 && (start == bytes.count || start >= 64 * 1024) {
            // Drop what was read, also when a server keeps the buffer from ever emptying (messages streamed
            // back to back): the buffer then stays bounded by one message plus one read.
            bytes.removeSubrange(..<start)
            start = 0
        }
        bytes += received
    }

    /// The next complete message, or nil until more bytes arrive.
    mutating func next() throws(PostgresError) -> BackendMessage? {
        guard bytes.count - start >= 5 else { return nil }
        let length =
            Int(bytes[start + 1]) << 24 | Int(bytes[start + 2]) << 16 | Int(bytes[start + 3]) << 8
            | Int(bytes[start + 4])
        guard length >= 4, length <= MessageReader.maxMessageBytes else {
            throw PostgresError(.protocolViolation, "invalid message length \(length)")
        }
        guard bytes.count - start >= 1 + length else { return nil }
        let message = BackendMessage(type: bytes[start], body: Array(bytes[start + 5..<start + 1 + length]))
        start += 1 + length
        return message
    }
}

/// Reads big-endian integers and C strings from a message body.
struct MessageCursor {
    private let data: [UInt8]
    private var position = 0

    init(_ data: [UInt8]) { self.data = data }

    var rest: ArraySlice<UInt8> { data[position...] }

    mutating func int32() throws(PostgresError) -> Int32 {
        let b = try self.bytes(4)
        return Int32(bitPattern: UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3]))
    }

    mutating func int16() throws(PostgresError) -> Int16 {
        let b = try self.bytes(2)
        return Int16(bitPattern: UInt16(b[0]) << 8 | UInt16(b[1]))
    }

    mutating func bytes(_ count: Int) throws(PostgresError) -> [UInt8] {
        guard count >= 0, data.count - position >= count else {
            throw PostgresError(.protocolViolation, "message shorter than its fields")
        }
        defer { position += count }
        return Array(data[position..<position + count])
    }

    /// The next NUL-terminated string, or nil at the end of the body.
    mutating func cString() throws(PostgresError) -> String? {
        guard position < data.count else { return nil }
        guard let end = data[position...].firstIndex(of: 0) else {
            throw PostgresError(.protocolViolation, "unterminated string in a message")
        }
        defer { position = end + 1 }
        return String(decoding: data[position..<end], as: UTF8.self)
    }
}

/// Frontend message encoding and the few backend bodies we decode
/// (https://www.postgresql.org/docs/15/protocol-message-formats.html).
enum Message {
    /// Protocol version 3.0.
    static let protocolVersion: Int32 = 196_608
    static let sslRequestCode: Int32 = 80_877_103

    static func sslRequest() -> [UInt8] { int32(8) + int32(sslRequestCode) }

    /// StartupMessage: no type byte; the length, the version, then name/value C strings and a final NUL.
    static func startup(_ parameters: [(String, String)]) -> [UInt8] {
        var body = int32(protocolVersion)
        for (name, value) in parameters { body += cString(name) + cString(value) }
        body.append(0)
        return int32(Int32(body.count + 4)) + body
    }

    static func password(_ bytes: [UInt8]) -> [UInt8] { message("p", bytes + [0]) }

    static func saslInitialResponse(_ mechanism: String, _ data: [UInt8]) -> [UInt8] {
        message("p", cString(mechanism) + int32(Int32(data.count)) + data)
    }

    static func saslResponse(_ data: [UInt8]) -> [UInt8] { message("p", data) }

    /// Parse into the unnamed statement, parameter types left for the server to infer.
    static func parse(_ sql: String) -> [UInt8] { message("P", cString("") + cString(sql) + int16(0)) }

    /// Bind the unnamed portal: every parameter and result in text format (zero format codes = all text).
    static func bind(_ parameters: [String?]) -> [UInt8] {
        var body = cString("") + cString("") + int16(0) + int16(Int16(parameters.count))
        for parameter in parameters {
            if let parameter {
                let bytes = Array(parameter.utf8)
                body += int32(Int32(bytes.count)) + bytes
            } else {
                body += int32(-1)
            }
        }
        return message("B", body + int16(0))
    }

    /// Execute the unnamed portal with no row limit.
    static func execute() -> [UInt8] { message("E", cString("") + int32(0)) }

    static func sync() -> [UInt8] { message("S", []) }

    static func terminate() -> [UInt8] { message("X", []) }

    /// A DataRow's columns as text (NULL → nil).
    static func dataRow(_ body: [UInt8]) throws(PostgresError) -> [String?] {
        var cursor = MessageCursor(body)
        let count = try cursor.int16()
        var columns: [String?] = []
        for _ in 0..<max(count, 0) {
            let length = try cursor.int32()
            columns.append(length < 0 ? nil : String(decoding: try cursor.bytes(Int(length)), as: UTF8.self))
        }
        return columns
    }

    /// An ErrorResponse's or NoticeResponse's fields by their type byte.
    static func errorFields(_ body: [UInt8]) -> [UInt8: String] {
        var fields: [UInt8: String] = [:]
        var i = 0
        while i < body.count, body[i] != 0 {
            let type = body[i]
            guard let end = body[(i + 1)...].firstIndex(of: 0) else { break }
            fields[type] = String(decoding: body[(i + 1)..<end], as: UTF8.self)
            i = end + 1
        }
        return fields
    }

    /// A message type for an error text: the letter when printable.
    static func name(_ type: UInt8) -> String {
        (0x21...0x7E).contains(type) ? "'\(String(decoding: [type], as: UTF8.self))'" : "0x\(String(type, radix: 16))"
    }

    private static func message(_ type: Character, _ body: [UInt8]) -> [UInt8] {
        [type.asciiValue ?? 0] + int32(Int32(body.count + 4)) + body
    }

    static func int32(_ value: Int32) -> [UInt8] {
        let v = UInt32(bitPattern: value)
        return [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    static func int16(_ value: Int16) -> [UInt8] {
        let v = UInt16(bitPattern: value)
        return [UInt8(v >> 8), UInt8(v & 0xFF)]
    }

    static func cString(_ text: String) -> [UInt8] { Array(text.utf8) + [0] }
}
