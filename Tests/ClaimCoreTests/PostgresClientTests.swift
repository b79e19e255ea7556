import Testing

@testable import ClaimCore

/// CLAIM_DATABASE_URL parsing: libpq's URI form, percent-decoding, defaults, and refusals that never echo the
/// password.
@Suite struct PostgresURLTests {
    @Test func fullURL() throws {
        let url = try PostgresURL(
            "postgresql://claim:s%40cr%3At%2F@db.example.com:6543/claims?sslmode=verify-full&sslrootcert=/ca.pem"
                + "&connect_timeout=3&application_name=fn&options=-c%20search_path%3Dclaims")
        #expect(url.user == "claim")
        #expect(url.password == "s@cr:t/")
        #expect(url.host == "db.example.com")
        #expect(url.port == 6543)
        #expect(url.database == "claims")
        #expect(url.sslMode == .verifyFull)
        #expect(url.sslRootCert == "/ca.pem")
        #expect(url.connectTimeoutMs == 3000)
        #expect(url.applicationName == "fn")
        #expect(url.options == "-c search_path=claims")
        #expect(!url.isIPLiteral)
    }

    @Test func defaults() throws {
        let url = try PostgresURL("postgres://alice@localhost")
        #expect(url.password == nil)
        #expect(url.port == 5432)
        #expect(url.database == "alice", "libpq: the database defaults to the user name")
        #expect(url.sslMode == .prefer, "libpq's default")
        #expect(url.sslRootCert == nil)
        #expect(url.connectTimeoutMs == 5000)
        #expect(url.applicationName == "leetcode-claim")
    }

    @Test func ipv6Host() throws {
        let url = try PostgresURL("postgres://u:p@[::1]:5433/d")
        #expect(url.host == "::1")
        #expect(url.port == 5433)
        #expect(url.isIPLiteral)
        #expect(url.redacted == "postgres://[::1]:5433/d?sslmode=prefer")
    }

    @Test func supabasePoolerUserWithDot() throws {
        let url = try PostgresURL(
            "postgres://postgres.abcdefgh:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres?sslmode=require")
        #expect(url.user == "postgres.abcdefgh")
        #expect(url.port == 6543)
        #expect(url.sslMode == .require)
    }

    @Test func sslRootCertSystemMeansDefaultStore() throws {
        #expect(try PostgresURL("postgres://u@h/d?sslrootcert=system").sslRootCert == nil)
    }

    @Test func redactedHasNoUserInformation() throws {
        let url = try PostgresURL("postgres://us%20er:topsecret@h:1/d%2Fb?sslmode=require")
        #expect(url.redacted == "postgres://h:1/d%2Fb?sslmode=require")
    }

    @Test(arguments: [
        ("mysql://u:p@h/d", "must start with"),
        ("postgres://h/d", "names no user"),
        ("postgres://u:p@/d", "names no host"),
        ("postgres://u:p@h:0/d", "port"),
        ("postgres://u:p@h:99999/d", "port"),
        ("postgres://u:p@h:54x/d", "port"),
        ("postgres://u:p@h1,h2/d", "several hosts"),
        ("postgres://u:p@[::1/d", "]"),
        ("postgres://u:p@h/d?sslmode=maybe", "sslmode must be one of"),
        ("postgres://u:p@h/d?sslmode=require&sslmode=disable", "twice"),
        ("postgres://u:p@h/d?pgbouncer=true", "does not support"),
        ("postgres://u:p@h/d?require_auth=kerberos", "require_auth lists a method"),
        ("postgres://u:p@h/d?require_auth=md5,!password", "mixes"),
        ("postgres://u:p@h/d?require_auth=md5,md5", "twice"),
        ("postgres://u:p@h/d?require_auth=!", "require_auth lists a method"),
        ("postgres://u:p@h/d?connect_timeout=0", "connect_timeout"),
        ("postgres://u:p%zz@h/d", "percent-escape"),
        ("postgres://u:p%00@h/d", "%00"),
        ("postgres://u:p@h/d#frag", "fragment"),
        ("postgres://u:p w@h/d", "space"),
    ])
    func refused(url: String, reason: String) throws {
        let error = try #require(throws: PostgresURL.Invalid.self) { _ = try PostgresURL(url) }
        #expect(error.reason.contains(reason), "\(error.reason)")
    }

    @Test func requireAuthDefaultsToAnyMethod() throws {
        #expect(try PostgresURL("postgres://u@h/d").requireAuth == .all)
        #expect(try PostgresURL("postgres://u@h/d?require_auth=scram-sha-256").requireAuth == .scramSHA256)
        #expect(
            try PostgresURL("postgres://u@h/d?require_auth=!password,!md5").requireAuth
                == [.gss, .sspi, .scramSHA256, .none])
        #expect(try PostgresURL("postgres://u@h/d?require_auth=none").requireAuth == .none)
    }

    /// An operator who forgot to percent-encode a reserved character in the password: whatever the URL turns
    /// into, a refusal quotes none of it (the issue's example, then every reserved character).
    @Test func misEncodedPasswordIsNeverQuoted() throws {
        let example = "postgres://claim:pa@ss?TopSecret@db.example/claims"
        let error = try #require(throws: PostgresURL.Invalid.self) { _ = try PostgresURL(example) }
        #expect(!error.reason.contains("TopSecret") && !error.reason.contains("ss?"), "\(error.reason)")
        #expect(error.reason.contains("percent-encode"))
        for c in [":", "/", "?", "#", "[", "]", "@", "!", "$", "&", "'", "(", ")", "*", "+", ",", ";", "=", "%", " "] {
            let url = "postgres://claim:Top\(c)SecretX9@db.example:5432/claims?sslmode=require"
            do throws(PostgresURL.Invalid) {
                let parsed = try PostgresURL(url)
                // Accepted: the fragments must still not be anywhere but in the password.
                #expect(!parsed.redacted.contains("SecretX9") && !parsed.redacted.contains("Top"), "\(c)")
            } catch {
                #expect(!error.reason.contains("SecretX9") && !error.reason.contains("Top"), "\(c): \(error.reason)")
            }
        }
    }

    /// RFC 7677's example role ("pencil", its salt, 4096 iterations): ClientKey and ServerKey computed
    /// independently with Python's hashlib.pbkdf2_hmac and hmac.
    static let clientKey = "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos="
    static let serverKey = "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
    /// The two decoded.
    static let keys = SCRAMSHA256.Keys(
        client: Base64.decode(clientKey[...]) ?? [], server: Base64.decode(serverKey[...]) ?? [])

    @Test func scramKeysAreParsedPercentEncodedOrNot() throws {
        let encoded = "pg%2FJI9Z%2BhkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos%3D"
        for client in [PostgresURLTests.clientKey, encoded] {
            let url = try PostgresURL(
                "postgres://claim@h/d?scram_client_key=\(client)&scram_server_key=\(PostgresURLTests.serverKey)")
            #expect(url.password == nil)
            #expect(url.scramKeys?.client == Base64.decode(PostgresURLTests.clientKey[...]))
            #expect(url.scramKeys?.server == Base64.decode(PostgresURLTests.serverKey[...]))
            #expect(url.redacted == "postgres://h:5432/d?sslmode=prefer", "the keys are as secret as the password")
        }
        #expect(try PostgresURL("postgres://claim:pw@h/d").scramKeys == nil)
    }

    @Test(arguments: [
        ("scram_client_key=\(PostgresURLTests.clientKey)", "go together"),
        ("scram_server_key=\(PostgresURLTests.serverKey)", "go together"),
        ("scram_client_key=c2VjcmV0S2V5WA==&scram_server_key=\(PostgresURLTests.serverKey)", "32-byte key"),
        ("scram_client_key=\(PostgresURLTests.clientKey)&scram_server_key=secretKeyX!", "32-byte key"),
        ("scram_client_key=&scram_server_key=\(PostgresURLTests.serverKey)", "32-byte key"),
    ])
    func badSCRAMKeysAreRefusedWithoutQuotingThem(query: String, reason: String) throws {
        let error = try #require(throws: PostgresURL.Invalid.self) {
            _ = try PostgresURL("postgres://claim@h/d?\(query)")
        }
        #expect(error.reason.contains(reason), "\(error.reason)")
        for secret in ["pg/JI9Z", "wfPLwcE6", "c2VjcmV0", "secretKey"] {
            #expect(!error.reason.contains(secret), "\(error.reason)")
        }
    }

    @Test func refusalNeverEchoesThePassword() throws {
        for url in [
            "postgres://u:hunter2secret@h:99999/d", "postgres://u:hunter2secret@h/d?x=hunter2secret",
            "postgres://u:hunter2secret%@h/d", "postgres://u:hunter2secret@h,h2/d",
        ] {
            let error = try #require(throws: PostgresURL.Invalid.self) { _ = try PostgresURL(url) }
            #expect(!error.reason.contains("hunter2"), "\(error.reason)")
        }
    }
}

/// CLAIM_DATABASE_URL in `Config.load`.
@Suite struct PostgresConfigTests {
    private func load(_ environment: [String: String]) throws(ClaimError) -> Config {
        try Config.load({ environment[$0] })
    }

    @Test func urlSelectsPostgres() throws {
        let config = try load(["CLAIM_AUTH": "trusted", "CLAIM_DATABASE_URL": "postgres://u:p@h/d"])
        #expect(config.databaseURL?.host == "h")
    }

    @Test func withoutURLSQLiteStays() throws {
        let config = try load(["CLAIM_AUTH": "trusted", "CLAIM_DATABASE_URL": ""])
        #expect(config.databaseURL == nil)
    }

    @Test func bothSetIsMisconfigured() throws {
        let error = try #require(throws: ClaimError.self) {
            _ = try load(["CLAIM_AUTH": "trusted", "CLAIM_DB": "/x.sqlite", "CLAIM_DATABASE_URL": "postgres://u@h/d"])
        }
        #expect(error.code == .misconfigured)
        #expect(error.message.contains("CLAIM_DB") && error.message.contains("CLAIM_DATABASE_URL"))
    }

    @Test func malformedURLNamesTheVariableNotThePassword() throws {
        let error = try #require(throws: ClaimError.self) {
            _ = try load(["CLAIM_AUTH": "trusted", "CLAIM_DATABASE_URL": "postgres://u:letmein@h:70000/d"])
        }
        #expect(error.code == .misconfigured)
        #expect(error.message.hasPrefix("CLAIM_DATABASE_URL"))
        #expect(!error.message.contains("letmein"))
    }
}

/// Which server errors a retry can fix: PgBouncer says 08P01 both for a refused login and for a server it cannot
/// reach (its own texts, from its client.c and for a server that is down).
@Suite struct PostgresErrorTests {
    @Test(arguments: [
        ("08P01", "SASL authentication failed", StoreFailure.loginRefused),
        ("08P01", "password authentication failed", .loginRefused),
        ("08P01", "server login has been failing, cached error: password authentication failed for user", .loginRefused),
        ("08P01", "server login has been failing, try again later (server_login_retry)", .unreachable),
        ("08P01", "query_wait_timeout", .unreachable),
        ("08006", "connection failure", .unreachable),
        ("28P01", "password authentication failed for user \"claim\"", .loginRefused),
    ])
    func serverErrors(sqlState: String, message: String, failure: StoreFailure) {
        let error = PostgresError(
            .init(severity: "FATAL", sqlState: sqlState, message: message))
        #expect(error.failure == failure, "\(sqlState) \(message)")
    }
}

/// SCRAM-SHA-256 against RFC 7677 §3's example exchange.
@Suite struct SCRAMTests {
    static let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"

    static let clientFinal =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    static let serverFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

    /// The same exchange from the password and from the keys derived beforehand (no PBKDF2).
    @Test(arguments: [false, true]) func rfc7677Example(withKeys: Bool) throws {
        let nonce = "rOprNGfwEbeRWgbNEkqO"
        var scram =
            withKeys
            ? SCRAMSHA256(user: "user", keys: PostgresURLTests.keys, clientNonce: nonce)
            : SCRAMSHA256(user: "user", password: "pencil", clientNonce: nonce)
        #expect(scram.clientFirstMessage == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        #expect(try scram.clientFinalMessage(serverFirst: SCRAMTests.serverFirst) == SCRAMTests.clientFinal)
        try scram.verify(serverFinal: SCRAMTests.serverFinal)
        #expect(scram.keys == PostgresURLTests.keys)
    }

    @Test func derivedKeysMatchAndOthersAreRefused() throws {
        let keys = PostgresURLTests.keys
        #expect(
            SCRAMSHA256.keys(
                password: Array("pencil".utf8), salt: try #require(Base64.decode("W22ZaJ0SNY7soEsUEjb6gQ==")),
                iterations: 4096) == keys)
        // Keys of another salt (the password changed since): a proof the server refuses, a signature we refuse.
        var other = SCRAMSHA256(
            user: "user", keys: SCRAMSHA256.Keys(client: keys.server, server: keys.client),
            clientNonce: "rOprNGfwEbeRWgbNEkqO")
        #expect(try other.clientFinalMessage(serverFirst: SCRAMTests.serverFirst) != SCRAMTests.clientFinal)
        #expect(throws: SCRAMSHA256.Failure.self) { try other.verify(serverFinal: SCRAMTests.serverFinal) }
    }

    @Test func postgresSendsAnEmptyUserName() {
        let scram = SCRAMSHA256(password: "pencil", clientNonce: "abc")
        #expect(scram.clientFirstMessage == "n,,n=,r=abc")
    }

    @Test func wrongServerSignatureIsRefused() throws {
        var scram = SCRAMSHA256(user: "user", password: "pencil", clientNonce: "rOprNGfwEbeRWgbNEkqO")
        _ = try scram.clientFinalMessage(serverFirst: SCRAMTests.serverFirst)
        #expect(throws: SCRAMSHA256.Failure.self) {
            try scram.verify(serverFinal: "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        }
        #expect(throws: SCRAMSHA256.Failure.self) { try scram.verify(serverFinal: "e=invalid-proof") }
    }

    @Test func signatureBeforeTheExchangeIsRefused() {
        let scram = SCRAMSHA256(user: "user", password: "pencil", clientNonce: "rOprNGfwEbeRWgbNEkqO")
        #expect(throws: SCRAMSHA256.Failure.self) {
            try scram.verify(serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        }
    }

    @Test(arguments: [
        "r=someoneElsesNonce123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=not base64,i=4096",
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=999999999",
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==",
        "m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "garbage",
    ])
    func malformedServerFirstIsRefused(message: String) {
        var scram = SCRAMSHA256(user: "user", password: "pencil", clientNonce: "rOprNGfwEbeRWgbNEkqO")
        #expect(throws: SCRAMSHA256.Failure.self) { _ = try scram.clientFinalMessage(serverFirst: message) }
        // With the keys, which use neither salt nor iteration count, the same messages are refused all the same.
        var keyed = SCRAMSHA256(user: "user", keys: PostgresURLTests.keys, clientNonce: "rOprNGfwEbeRWgbNEkqO")
        #expect(throws: SCRAMSHA256.Failure.self) { _ = try keyed.clientFinalMessage(serverFirst: message) }
    }

    @Test func base64RoundTrip() throws {
        for length in 0..<10 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            let text = Base64.encode(bytes)
            #expect(text.count % 4 == 0)
            #expect(Base64.decode(text[...]) == bytes)
        }
        #expect(Base64.encode(Array("n,,".utf8)) == "biws")
        #expect(Base64.decode("a===") == nil)
        #expect(Base64.decode("ab=c") == nil)
        #expect(Base64.decode("abc") == nil)
    }

    @Test func md5Password() throws {
        // md5(md5("pencil" + "user") hex + salt) computed independently with Python's hashlib.
        let answer = AuthenticationStateMachine.md5Password(user: "user", password: "pencil", salt: [1, 2, 3, 4])
        #expect(answer == "md54376eb6913b38f9aaff38dc7cf19ca76")
    }
}
