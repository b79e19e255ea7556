import COpenSSL

/// Start-up, from our StartupMessage to the server's first ReadyForQuery, as a pure state machine (postgres-nio's
/// `AuthenticationStateMachine`): `received(_:)` takes each backend message and says what to do, with no socket, so
/// every (state, message) pair is tested. What is legal where, and nothing else is
/// (https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-START-UP):
///
/// | state | legal messages |
/// |---|---|
/// | `awaitingRequest` | an authentication request `require_auth` allows (Ok = none, cleartext, MD5, SASL), NegotiateProtocolVersion |
/// | `passwordSent` | AuthenticationOk |
/// | `saslStarted` | SASLContinue (the server-first-message) |
/// | `saslAnswered` | SASLFinal with the server's signature, which must verify |
/// | `saslVerified` | AuthenticationOk |
/// | `authenticated` | ParameterStatus, BackendKeyData, ReadyForQuery (→ `ready`) |
/// | `ready`, `failed` | nothing: start-up is over |
///
/// NoticeResponse is legal in every state before `ready`; an ErrorResponse ends start-up with the server's error.
/// So ReadyForQuery comes only after AuthenticationOk, and after SCRAM only once the server has proven it knows the
/// password; once SCRAM began, no other method (cleartext, MD5) is answered.
struct AuthenticationStateMachine {
    /// Where start-up stands; the table above says what each state accepts.
    enum State {
        /// StartupMessage sent: the server chooses a method (or none).
        case awaitingRequest
        /// A cleartext or MD5 password sent.
        case passwordSent
        /// SASLInitialResponse (client-first-message) sent.
        case saslStarted(SCRAMSHA256)
        /// SASLResponse (client-final-message, with our proof) sent.
        case saslAnswered(SCRAMSHA256)
        /// The server's signature verified: it knows the password.
        case saslVerified
        /// AuthenticationOk received.
        case authenticated
        /// ReadyForQuery received: start-up is over.
        case ready
        /// Start-up failed; nothing more is accepted.
        case failed
    }

    /// What the connection does next.
    enum Action: Equatable {
        /// Send these bytes (a password or SASL message) and read on.
        case send([UInt8])
        /// Nothing to send: read on.
        case wait
        /// Start-up is done; queries may be sent.
        case ready(BackendMessage.TransactionStatus)
        /// Start-up failed; close the connection.
        case fail(PostgresError)
    }

    private(set) var state = State.awaitingRequest
    /// The SCRAM keys of a login whose server proved it knows them; nil for any other method.
    private(set) var verifiedSCRAMKeys: SCRAMSHA256.Keys?
    let user: String
    let password: String?
    /// Used by SCRAM instead of the password when given.
    let scramKeys: SCRAMSHA256.Keys?
    let allowed: PostgresURL.AuthMethods
    /// A fresh SCRAM client nonce, asked for only when the server chooses SCRAM.
    let nonce: () -> String?

    init(
        user: String, password: String?, scramKeys: SCRAMSHA256.Keys? = nil, allowed: PostgresURL.AuthMethods,
        nonce: @escaping () -> String?
    ) {
        self.user = user
        self.password = password
        self.scramKeys = scramKeys
        self.allowed = allowed
        self.nonce = nonce
    }

    /// Takes the next backend message: the new state, and what the connection must do.
    mutating func received(_ message: BackendMessage) -> Action {
        switch (state, message) {
        case (.ready, _), (.failed, _):
            return fail(.protocolViolation, "\(message.kind) after start-up ended")
        case (_, .error(let fields)):
            state = .failed
            return .fail(PostgresError(fields))
        case (_, .notice):
            return .wait
        case (.awaitingRequest, .authentication(let request)):
            return answer(request)
        case (.awaitingRequest, .negotiateProtocolVersion):
            return .wait
        case (.passwordSent, .authentication(.ok)), (.saslVerified, .authentication(.ok)):
            state = .authenticated
            return .wait
        case (.saslStarted(var client), .authentication(.saslContinue(let serverFirst))):
            let final: String
            do throws(SCRAMSHA256.Failure) {
                final = try client.clientFinalMessage(serverFirst: String(decoding: serverFirst, as: UTF8.self))
            } catch {
                return fail(.serverNotTrusted, "SCRAM: \(error.reason)")
            }
            state = .saslAnswered(client)
            return .send(FrontendMessage.saslResponse(Array(final.utf8)))
        case (.saslAnswered(let client), .authentication(.saslFinal(let serverFinal))):
            do throws(SCRAMSHA256.Failure) {
                try client.verify(serverFinal: String(decoding: serverFinal, as: UTF8.self))
            } catch {
                return fail(.serverNotTrusted, "SCRAM: \(error.reason)")
            }
            verifiedSCRAMKeys = client.keys
            state = .saslVerified
            return .wait
        case (.saslStarted, .authentication(let request)), (.saslAnswered, .authentication(let request)):
            // Anything but the next SCRAM step: an Ok that skips the server's proof, or a weaker method (a downgrade).
            return fail(.serverNotTrusted, "the server sent \(request.kind) in the middle of SCRAM")
        case (.passwordSent, .authentication(let request)), (.saslVerified, .authentication(let request)),
            (.authenticated, .authentication(let request)):
            return fail(.protocolViolation, "the server sent \(request.kind) after the authentication exchange")
        case (.authenticated, .parameterStatus), (.authenticated, .backendKeyData):
            return .wait
        case (.authenticated, .readyForQuery(let status)):
            state = .ready
            return .ready(status)
        case (.awaitingRequest, .readyForQuery), (.passwordSent, .readyForQuery), (.saslStarted, .readyForQuery),
            (.saslAnswered, .readyForQuery), (.saslVerified, .readyForQuery):
            return fail(.serverNotTrusted, "ReadyForQuery before the server ended authentication with AuthenticationOk")
        default:
            return fail(.protocolViolation, "unexpected \(message.kind) during start-up")
        }
    }

    /// The first authentication request: the method the server chose, if `require_auth` allows it.
    private mutating func answer(_ request: BackendMessage.Authentication) -> Action {
        switch request {
        case .ok:
            guard allowed.contains(.none) else {
                return fail(.serverNotTrusted, "the server let us in without authentication; require_auth forbids it")
            }
            state = .authenticated
            return .wait
        case .cleartextPassword:
            guard allowed.contains(.password) else {
                return fail(.serverNotTrusted, "the server asked for a cleartext password; require_auth forbids it")
            }
            guard let password else { return noPassword() }
            state = .passwordSent
            return .send(FrontendMessage.password(Array(password.utf8)))
        case .md5Password(let salt):
            guard allowed.contains(.md5) else {
                return fail(.serverNotTrusted, "the server asked for an MD5 password; require_auth forbids it")
            }
            guard let password else { return noPassword() }
            guard let answer = AuthenticationStateMachine.md5Password(user: user, password: password, salt: salt) else {
                return fail(.authentication, "OpenSSL could not compute MD5")
            }
            state = .passwordSent
            return .send(FrontendMessage.password(Array(answer.utf8)))
        case .sasl(let mechanisms):
            guard allowed.contains(.scramSHA256) else {
                return fail(.serverNotTrusted, "the server asked for SCRAM-SHA-256; require_auth forbids it")
            }
            // SCRAM-SHA-256-PLUS (channel binding) is offered over TLS too; plain SCRAM-SHA-256 with the "n" gs2
            // flag is what libpq does with channel_binding=disable.
            guard mechanisms.contains("SCRAM-SHA-256") else {
                return fail(.authentication, "unsupported SASL mechanisms: \(mechanisms.joined(separator: ", "))")
            }
            guard let clientNonce = nonce() else { return fail(.authentication, "getrandom failed for the nonce") }
            let client: SCRAMSHA256
            switch (scramKeys, password) {
            case (let keys?, _): client = SCRAMSHA256(keys: keys, clientNonce: clientNonce)
            case (nil, let password?): client = SCRAMSHA256(password: password, clientNonce: clientNonce)
            case (nil, nil): return noPassword()
            }
            state = .saslStarted(client)
            return .send(FrontendMessage.saslInitialResponse("SCRAM-SHA-256", Array(client.clientFirstMessage.utf8)))
        case .saslContinue, .saslFinal:
            return fail(.protocolViolation, "the server sent \(request.kind) before SASL began")
        case .unsupported(let code):
            // 2 Kerberos V5, 7 GSSAPI, 9 SSPI: not in a static binary without those libraries.
            return fail(.authentication, "unsupported authentication method \(code)")
        }
    }

    private mutating func noPassword() -> Action {
        let keysOnly = scramKeys != nil ? " (its SCRAM keys serve SCRAM-SHA-256 only)" : ""
        return fail(.authentication, "the server asks for a password and CLAIM_DATABASE_URL has none" + keysOnly)
    }

    private mutating func fail(_ kind: PostgresError.Kind, _ message: String) -> Action {
        state = .failed
        return .fail(PostgresError(kind, message))
    }

    /// "md5" + md5hex(md5hex(password + user) + salt)
    /// (https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.3).
    static func md5Password(user: String, password: String, salt: [UInt8]) -> String? {
        guard let inner = SCRAMSHA256.digest(Array((password + user).utf8), EVP_md5()),
            let outer = SCRAMSHA256.digest(Array(hex(inner).utf8) + salt, EVP_md5())
        else { return nil }
        return "md5" + hex(outer)
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
    }
}
