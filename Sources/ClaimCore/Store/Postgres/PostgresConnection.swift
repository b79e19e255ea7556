import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

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
