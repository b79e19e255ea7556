import Testing

@testable import ClaimCore

/// The start-up state machine without a socket: every (state, message) pair against a table written out by hand,
/// then the rules one by one (SCRAM's server proof, no downgrade, require_auth).
@Suite struct AuthenticationStateMachineTests {
    /// RFC 7677's example as PostgreSQL runs it: the user name in the SCRAM messages is empty, so the proof and the
    /// server's signature differ from the RFC's (computed independently with Python's hashlib and hmac).
    static let nonce = "rOprNGfwEbeRWgbNEkqO"
    static let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    static let clientFinal =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k="
    static let serverFinal = "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg="

    static func machine(_ allowed: PostgresURL.AuthMethods = .all, password: String? = "pencil")
        -> AuthenticationStateMachine
    {
        AuthenticationStateMachine(user: "user", password: password, allowed: allowed, nonce: { nonce })
    }

    /// One representative of every backend message the decoder produces.
    static let messages: [(name: String, message: BackendMessage)] = [
        ("ok", .authentication(.ok)),
        ("cleartext", .authentication(.cleartextPassword)),
        ("md5", .authentication(.md5Password(salt: [1, 2, 3, 4]))),
        ("sasl", .authentication(.sasl(mechanisms: ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]))),
        ("saslContinue", .authentication(.saslContinue(Array(serverFirst.utf8)))),
        ("saslFinal", .authentication(.saslFinal(Array(serverFinal.utf8)))),
        ("gss", .authentication(.unsupported(7))),
        ("parameterStatus", .parameterStatus),
        ("backendKeyData", .backendKeyData),
        ("negotiateProtocolVersion", .negotiateProtocolVersion),
        ("readyForQuery", .readyForQuery(.idle)),
        ("parseComplete", .parseComplete),
        ("bindComplete", .bindComplete),
        ("dataRow", .dataRow(["x"])),
        ("commandComplete", .commandComplete),
        ("emptyQueryResponse", .emptyQueryResponse),
        ("noData", .noData),
        ("portalSuspended", .portalSuspended),
        ("rowDescription", .rowDescription),
        ("parameterDescription", .parameterDescription),
        ("notification", .notification),
        ("notice", .notice),
        ("error", .error(.init(severity: "FATAL", sqlState: "28P01", message: "password authentication failed"))),
    ]

    /// What a message does in a state: the action's kind and the state after it.
    enum Outcome: Equatable {
        case send(then: String)
        case wait(then: String)
        case ready
        case fail(PostgresError.Kind)
    }

    /// The legal moves of each state; every other message fails with `.protocolViolation`.
    static let table: [String: [String: Outcome]] = [
        "awaitingRequest": [
            "ok": .wait(then: "authenticated"), "cleartext": .send(then: "passwordSent"),
            "md5": .send(then: "passwordSent"), "sasl": .send(then: "saslStarted"),
            "gss": .fail(.authentication), "negotiateProtocolVersion": .wait(then: "awaitingRequest"),
            "readyForQuery": .fail(.serverNotTrusted), "notice": .wait(then: "awaitingRequest"),
            "error": .fail(.server),
        ],
        "passwordSent": [
            "ok": .wait(then: "authenticated"), "readyForQuery": .fail(.serverNotTrusted),
            "notice": .wait(then: "passwordSent"), "error": .fail(.server),
        ],
        "saslStarted": [
            "saslContinue": .send(then: "saslAnswered"), "ok": .fail(.serverNotTrusted),
            "cleartext": .fail(.serverNotTrusted), "md5": .fail(.serverNotTrusted), "sasl": .fail(.serverNotTrusted),
            "saslFinal": .fail(.serverNotTrusted), "gss": .fail(.serverNotTrusted),
            "readyForQuery": .fail(.serverNotTrusted), "notice": .wait(then: "saslStarted"), "error": .fail(.server),
        ],
        "saslAnswered": [
            "saslFinal": .wait(then: "saslVerified"), "ok": .fail(.serverNotTrusted),
            "cleartext": .fail(.serverNotTrusted), "md5": .fail(.serverNotTrusted), "sasl": .fail(.serverNotTrusted),
            "saslContinue": .fail(.serverNotTrusted), "gss": .fail(.serverNotTrusted),
            "readyForQuery": .fail(.serverNotTrusted), "notice": .wait(then: "saslAnswered"), "error": .fail(.server),
        ],
        "saslVerified": [
            "ok": .wait(then: "authenticated"), "readyForQuery": .fail(.serverNotTrusted),
            "notice": .wait(then: "saslVerified"), "error": .fail(.server),
        ],
        "authenticated": [
            "parameterStatus": .wait(then: "authenticated"), "backendKeyData": .wait(then: "authenticated"),
            "readyForQuery": .ready, "notice": .wait(then: "authenticated"), "error": .fail(.server),
        ],
        "ready": [:],
        "failed": [:],
    ]

    /// A machine driven into each state by a legal exchange.
    static let states: [String] = [
        "awaitingRequest", "passwordSent", "saslStarted", "saslAnswered", "saslVerified", "authenticated", "ready",
        "failed",
    ]

    static func machine(in state: String) -> AuthenticationStateMachine {
        var m = machine()
        let path: [BackendMessage] =
            switch state {
            case "passwordSent": [.authentication(.cleartextPassword)]
            case "saslStarted": [messages[3].message]
            case "saslAnswered": [messages[3].message, messages[4].message]
            case "saslVerified": [messages[3].message, messages[4].message, messages[5].message]
            case "authenticated": [.authentication(.ok)]
            case "ready": [.authentication(.ok), .readyForQuery(.idle)]
            case "failed": [.error(.init(message: "no"))]
            default: []
            }
        for message in path { _ = m.received(message) }
        return m
    }

    @Test(arguments: states)
    func everyMessageInState(state: String) {
        let legal = AuthenticationStateMachineTests.table[state] ?? [:]
        for (name, message) in AuthenticationStateMachineTests.messages {
            var m = AuthenticationStateMachineTests.machine(in: state)
            #expect(m.state.name == state)
            let action = m.received(message)
            let expected = legal[name] ?? .fail(.protocolViolation)
            let actual: Outcome
            switch action {
            case .send: actual = .send(then: m.state.name)
            case .wait: actual = .wait(then: m.state.name)
            case .ready: actual = .ready
            case .fail(let error): actual = .fail(error.kind)
            }
            #expect(actual == expected, "\(state) + \(name)")
            if case .fail = action { #expect(m.state.name == "failed", "\(state) + \(name) must end in failed") }
            if case .ready = action { #expect(m.state.name == "ready") }
        }
    }

    @Test func scramSendsTheExpectedMessagesAndReachesReadyOnlyAfterOk() {
        var m = AuthenticationStateMachineTests.machine(.all)
        let n = AuthenticationStateMachineTests.self
        #expect(
            m.received(n.messages[3].message)
                == .send(FrontendMessage.saslInitialResponse("SCRAM-SHA-256", Array("n,,n=,r=\(n.nonce)".utf8))))
        #expect(m.received(n.messages[4].message) == .send(FrontendMessage.saslResponse(Array(n.clientFinal.utf8))))
        #expect(m.received(n.messages[5].message) == .wait)
        #expect(m.received(.authentication(.ok)) == .wait)
        #expect(m.received(.parameterStatus) == .wait)
        #expect(m.received(.backendKeyData) == .wait)
        #expect(m.received(.readyForQuery(.idle)) == .ready(.idle))
    }

    @Test func readyForQueryInsteadOfSASLFinalIsRefused() {
        var m = AuthenticationStateMachineTests.machine(in: "saslAnswered")
        guard case .fail(let error) = m.received(.readyForQuery(.idle)) else {
            Issue.record("ReadyForQuery without the server's proof must fail")
            return
        }
        #expect(error.kind == .serverNotTrusted)
        #expect(error.failure == .serverNotTrusted)
    }

    @Test func okInsteadOfSASLFinalIsRefused() {
        var m = AuthenticationStateMachineTests.machine(in: "saslAnswered")
        guard case .fail(let error) = m.received(.authentication(.ok)) else {
            Issue.record("AuthenticationOk without the server's proof must fail")
            return
        }
        #expect(error.kind == .serverNotTrusted)
    }

    @Test(arguments: ["v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "e=invalid-proof", "garbage", ""])
    func wrongServerSignatureIsRefused(serverFinal: String) {
        var m = AuthenticationStateMachineTests.machine(in: "saslAnswered")
        guard case .fail(let error) = m.received(.authentication(.saslFinal(Array(serverFinal.utf8)))) else {
            Issue.record("a wrong signature must fail")
            return
        }
        #expect(error.kind == .serverNotTrusted)
    }

    @Test(arguments: ["saslStarted", "saslAnswered"])
    func noCleartextOrMD5AfterSCRAMBegan(state: String) {
        for request in [BackendMessage.Authentication.cleartextPassword, .md5Password(salt: [9, 9, 9, 9])] {
            var m = AuthenticationStateMachineTests.machine(in: state)
            guard case .fail(let error) = m.received(.authentication(request)) else {
                Issue.record("\(state): \(request.kind) must not be answered")
                continue
            }
            #expect(error.kind == .serverNotTrusted)
        }
    }

    @Test func passwordAndMD5Answers() {
        var clear = AuthenticationStateMachineTests.machine()
        #expect(clear.received(.authentication(.cleartextPassword)) == .send(FrontendMessage.password(Array("pencil".utf8))))
        var md5 = AuthenticationStateMachineTests.machine()
        // md5(md5("pencil" + "user") hex + salt) computed independently with Python's hashlib.
        #expect(
            md5.received(.authentication(.md5Password(salt: [1, 2, 3, 4])))
                == .send(FrontendMessage.password(Array("md54376eb6913b38f9aaff38dc7cf19ca76".utf8))))
    }

    @Test func noPasswordIsAnAuthenticationFailure() {
        for request in [BackendMessage.Authentication.cleartextPassword, .md5Password(salt: [1, 2, 3, 4]),
            .sasl(mechanisms: ["SCRAM-SHA-256"])]
        {
            var m = AuthenticationStateMachineTests.machine(password: nil)
            guard case .fail(let error) = m.received(.authentication(request)) else {
                Issue.record("\(request.kind) without a password must fail")
                continue
            }
            #expect(error.kind == .authentication)
        }
    }

    /// With the role's keys and no password: SCRAM runs on the keys (the same proof as the password's, and the
    /// server must still prove itself); cleartext and MD5 have no password to send.
    /// A machine with the RFC's keys (PostgreSQL's empty SCRAM user name does not enter them: the keys of "pencil"
    /// and its salt) and `password`.
    static func machine(keysAnd password: String?) -> AuthenticationStateMachine {
        AuthenticationStateMachine(
            user: "user", password: password, scramKeys: PostgresURLTests.keys, allowed: .all, nonce: { nonce })
    }

    @Test func scramKeysWithoutAPassword() {
        let keys = PostgresURLTests.keys
        func machine() -> AuthenticationStateMachine { AuthenticationStateMachineTests.machine(keysAnd: nil) }
        var m = machine()
        guard case .send = m.received(.authentication(.sasl(mechanisms: ["SCRAM-SHA-256"]))) else {
            Issue.record("SCRAM with keys must start")
            return
        }
        let final = m.received(.authentication(.saslContinue(Array(AuthenticationStateMachineTests.serverFirst.utf8))))
        #expect(final == .send(FrontendMessage.saslResponse(Array(AuthenticationStateMachineTests.clientFinal.utf8))))
        #expect(m.verifiedSCRAMKeys == nil, "not before the server proved it knows them")
        let bad = "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        var wrong = m
        guard case .fail(let error) = wrong.received(.authentication(.saslFinal(Array(bad.utf8)))) else {
            Issue.record("a wrong signature must fail with keys too")
            return
        }
        #expect(error.kind == .serverNotTrusted)
        #expect(m.received(.authentication(.saslFinal(Array(AuthenticationStateMachineTests.serverFinal.utf8)))) == .wait)
        #expect(m.verifiedSCRAMKeys == keys)
        for request in [BackendMessage.Authentication.cleartextPassword, .md5Password(salt: [1, 2, 3, 4])] {
            var other = machine()
            guard case .fail(let error) = other.received(.authentication(request)) else {
                Issue.record("\(request.kind) without a password must fail")
                continue
            }
            #expect(error.kind == .authentication)
        }
    }

    /// Keys and a password: SCRAM uses the keys (a wrong password changes nothing), MD5 and cleartext the password.
    @Test func scramKeysWinOverThePasswordForSCRAMOnly() {
        func machine() -> AuthenticationStateMachine { AuthenticationStateMachineTests.machine(keysAnd: "not-pencil") }
        var m = machine()
        _ = m.received(.authentication(.sasl(mechanisms: ["SCRAM-SHA-256"])))
        let final = m.received(.authentication(.saslContinue(Array(AuthenticationStateMachineTests.serverFirst.utf8))))
        #expect(final == .send(FrontendMessage.saslResponse(Array(AuthenticationStateMachineTests.clientFinal.utf8))))
        var clear = machine()
        #expect(
            clear.received(.authentication(.cleartextPassword))
                == .send(FrontendMessage.password(Array("not-pencil".utf8))))
    }

    @Test func saslWithoutSCRAMSHA256IsAnAuthenticationFailure() {
        var m = AuthenticationStateMachineTests.machine()
        guard case .fail(let error) = m.received(.authentication(.sasl(mechanisms: ["SCRAM-SHA-256-PLUS"]))) else {
            Issue.record("no usable mechanism must fail")
            return
        }
        #expect(error.kind == .authentication)
    }

    /// require_auth as libpq 16 reads it: which first request each setting lets through.
    @Test(arguments: [
        ("scram-sha-256", ["sasl"]),
        ("password", ["cleartext"]),
        ("md5,password", ["cleartext", "md5"]),
        ("none", ["ok"]),
        ("!password,!md5", ["ok", "sasl"]),
        ("!none", ["cleartext", "md5", "sasl"]),
        ("!password,!md5,!none", ["sasl"]),
        ("scram-sha-256,none", ["ok", "sasl"]),
        ("", ["ok", "cleartext", "md5", "sasl"]),
    ])
    func requireAuth(value: String, accepted: [String]) throws {
        let allowed = try PostgresURL.AuthMethods(requirement: value)
        for name in ["ok", "cleartext", "md5", "sasl"] {
            var m = AuthenticationStateMachineTests.machine(allowed)
            let message = try #require(AuthenticationStateMachineTests.messages.first { $0.name == name }).message
            let action = m.received(message)
            if accepted.contains(name) {
                if case .fail = action { Issue.record("require_auth=\(value) must accept \(name)") }
            } else {
                guard case .fail(let error) = action else {
                    Issue.record("require_auth=\(value) must refuse \(name)")
                    continue
                }
                #expect(error.kind == .serverNotTrusted, "\(value): \(name)")
            }
        }
    }
}

extension AuthenticationStateMachine.State {
    var name: String {
        switch self {
        case .awaitingRequest: "awaitingRequest"
        case .passwordSent: "passwordSent"
        case .saslStarted: "saslStarted"
        case .saslAnswered: "saslAnswered"
        case .saslVerified: "saslVerified"
        case .authenticated: "authenticated"
        case .ready: "ready"
        case .failed: "failed"
        }
    }
}
