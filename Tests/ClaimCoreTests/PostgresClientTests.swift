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
        #expect(url.redacted == "postgres://u@[::1]:5433/d?sslmode=prefer")
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

    @Test func redactedHasNoPassword() throws {
        let url = try PostgresURL("postgres://us%20er:topsecret@h:1/d%2Fb?sslmode=require")
        #expect(url.redacted == "postgres://us%20er@h:1/d%2Fb?sslmode=require")
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
        ("postgres://u:p@h/d?pgbouncer=true", "not supported"),
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

/// SCRAM-SHA-256 against RFC 7677 §3's example exchange.
@Suite struct SCRAMTests {
    static let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"

    @Test func rfc7677Example() throws {
        var scram = SCRAMSHA256(user: "user", password: "pencil", clientNonce: "rOprNGfwEbeRWgbNEkqO")
        #expect(scram.clientFirstMessage == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        let final = try scram.clientFinalMessage(serverFirst: SCRAMTests.serverFirst)
        #expect(
            final
                == "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                + "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        try scram.verify(serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
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
        let answer = try PostgresConnection.md5Password(user: "user", password: "pencil", salt: [1, 2, 3, 4])
        #expect(answer == "md54376eb6913b38f9aaff38dc7cf19ca76")
    }
}

/// Frontend message encoding and backend message decoding, byte for byte
/// (https://www.postgresql.org/docs/15/protocol-message-formats.html).
@Suite struct PostgresMessageTests {
    @Test func sslRequest() {
        #expect(Message.sslRequest() == [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F])
    }

    @Test func startup() {
        let bytes = Message.startup([("user", "u"), ("database", "d")])
        let body: [UInt8] = [0, 3, 0, 0] + Array("user\0u\0database\0d\0\0".utf8)
        #expect(bytes == [0, 0, 0, UInt8(body.count + 4)] + body)
    }

    @Test func parseBindExecuteSync() {
        #expect(Message.parse("SELECT 1") == [UInt8(ascii: "P"), 0, 0, 0, 16, 0] + Array("SELECT 1\0".utf8) + [0, 0])
        let bind = Message.bind(["ab", nil])
        let body: [UInt8] = [0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0x61, 0x62, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0]
        #expect(bind == [UInt8(ascii: "B"), 0, 0, 0, UInt8(body.count + 4)] + body)
        #expect(Message.execute() == [UInt8(ascii: "E"), 0, 0, 0, 9, 0, 0, 0, 0, 0])
        #expect(Message.sync() == [UInt8(ascii: "S"), 0, 0, 0, 4])
        #expect(Message.terminate() == [UInt8(ascii: "X"), 0, 0, 0, 4])
    }

    @Test func saslMessages() {
        let initial = Message.saslInitialResponse("SCRAM-SHA-256", Array("n,,n=,r=x".utf8))
        let body = Array("SCRAM-SHA-256\0".utf8) + [0, 0, 0, 9] + Array("n,,n=,r=x".utf8)
        #expect(initial == [UInt8(ascii: "p"), 0, 0, 0, UInt8(body.count + 4)] + body)
        #expect(Message.password(Array("pw".utf8)) == [UInt8(ascii: "p"), 0, 0, 0, 7, 0x70, 0x77, 0])
    }

    @Test func readerSplitsMessagesAcrossReads() throws {
        var reader = MessageReader()
        let stream: [UInt8] =
            [UInt8(ascii: "Z"), 0, 0, 0, 5, UInt8(ascii: "I")]
            + [UInt8(ascii: "D"), 0, 0, 0, 16, 0, 2, 0, 0, 0, 2, 0x68, 0x69, 0xFF, 0xFF, 0xFF, 0xFF]
        var messages: [BackendMessage] = []
        for byte in stream {  // one byte per read: the worst a network can do
            reader.append([byte][...])
            while let message = try reader.next() { messages.append(message) }
        }
        #expect(messages.count == 2)
        #expect(messages[0] == BackendMessage(type: UInt8(ascii: "Z"), body: [UInt8(ascii: "I")]))
        #expect(try Message.dataRow(messages[1].body) == ["hi", nil])
    }

    @Test func readerRefusesAbsurdLengths() {
        var reader = MessageReader()
        reader.append([UInt8(ascii: "D"), 0x7F, 0xFF, 0xFF, 0xFF][...])
        #expect(throws: PostgresError.self) { _ = try reader.next() }
        var short = MessageReader()
        short.append([UInt8(ascii: "D"), 0, 0, 0, 3][...])
        #expect(throws: PostgresError.self) { _ = try short.next() }
    }

    @Test func truncatedDataRowIsAProtocolError() {
        #expect(throws: PostgresError.self) { _ = try Message.dataRow([0, 1, 0, 0, 0, 5, 0x61]) }
    }

    @Test func errorResponseFields() {
        let body = Array("SERROR\0VERROR\0C23505\0Mduplicate key value\0nprofiles_one_per_user\0\0".utf8)
        let error = PostgresError(fields: Message.errorFields(body))
        #expect(error.sqlState == "23505")
        #expect(error.message == "duplicate key value")
        #expect(error.constraint == "profiles_one_per_user")
        #expect(!error.endsSession)
        let fatal = PostgresError(fields: Message.errorFields(Array("SFATAL\0C28P01\0Mpassword failed\0\0".utf8)))
        #expect(fatal.endsSession)
        #expect(fatal.claimError(context: "connect").code == .storeUnavailable)
    }

    @Test(arguments: [
        ("28P01", ClaimError.Code.storeUnavailable), ("28000", .storeUnavailable), ("3D000", .storeUnavailable),
        ("53300", .storeBusy), ("55P03", .storeBusy), ("40001", .storeBusy), ("40P01", .storeBusy),
        ("57P01", .storeUnreachable), ("57P03", .storeUnreachable), ("08006", .storeUnreachable),
        ("42P01", .storeUnavailable),
    ])
    func sqlStateMapping(state: String, code: ClaimError.Code) {
        #expect(PostgresError(.server, "x", sqlState: state).claimError(context: "t").code == code)
    }

    @Test func networkFailuresAreRetryableExceptTLS() {
        let refused = PostgresError(NetworkFailure(.connect, "127.0.0.1:1: Connection refused"))
        #expect(refused.claimError(context: "connect").code == .storeUnreachable)
        #expect(refused.claimError(context: "connect").retryAfterSeconds == 1)
        #expect(PostgresError(NetworkFailure(.timeout, "t")).claimError(context: "c").code == .storeUnreachable)
        #expect(PostgresError(NetworkFailure(.reset, "eof")).claimError(context: "c").code == .storeUnreachable)
        #expect(PostgresError(NetworkFailure(.tls, "bad cert")).claimError(context: "c").code == .storeUnavailable)
    }

    @Test func logDetailCarriesTheSQLNotTheValues() {
        var error = PostgresError(fields: Message.errorFields(Array("SERROR\0C23505\0Mduplicate\0Dsecret\0\0".utf8)))
        error.sql = "INSERT INTO t\n    VALUES ($1)"
        let detail = error.claimError(context: "claim").detail ?? ""
        #expect(detail == "claim: PostgreSQL error 23505: duplicate in `INSERT INTO t VALUES ($1)`")
    }
}
