import CSQLite
import Testing

@testable import ClaimCore

/// The one failure vocabulary: both backends classify into it, and each failure's response is written once.
@Suite struct StoreFailureTests {
    @Test(arguments: [
        ("28P01", StoreFailure.loginRefused), ("28000", .loginRefused), ("3D000", .noSuchDatabase),
        ("53300", .busy), ("55P03", .busy), ("57014", .busy), ("40001", .busy), ("40P01", .busy),
        ("57P01", .unreachable), ("57P03", .unreachable), ("08006", .unreachable), ("25006", .readOnly),
        ("53100", .full), ("42P01", .failed),
    ])
    func postgresSQLStates(state: String, failure: StoreFailure) {
        #expect(PostgresError(.server, "x", sqlState: state).failure == failure)
    }

    @Test(arguments: [
        (PostgresError.Kind.network(.connect), StoreFailure.unreachable), (.network(.timeout), .unreachable),
        (.network(.reset), .unreachable), (.network(.dns), .unreachable), (.network(.tls), .tlsRefused),
        (.network(.tlsSetup), .tlsRefused), (.tlsRefused, .tlsNotOffered), (.authentication, .loginRefused),
        (.serverNotTrusted, .serverNotTrusted), (.protocolViolation, .protocolViolation),
    ])
    func postgresKinds(kind: PostgresError.Kind, failure: StoreFailure) {
        #expect(PostgresError(kind, "x").failure == failure)
    }

    @Test(arguments: [
        (SQLITE_BUSY, StoreFailure.busy), (SQLITE_LOCKED, .busy), (SQLITE_READONLY, .readOnly),
        (SQLITE_FULL, .full), (SQLITE_CORRUPT, .corrupt), (SQLITE_NOTADB, .corrupt), (SQLITE_CANTOPEN, .cannotOpen),
        (SQLITE_IOERR, .ioFailure), (SQLITE_ERROR, .failed),
    ])
    func sqliteCodesAnswerLikePostgres(code: Int32, failure: StoreFailure) {
        let error = SQLiteError(code: code, message: "m", sql: "SELECT 1").claimError(context: "t")
        let expected = failure.error()
        #expect(error.code == expected.code)
        #expect(error.message == expected.message)
        #expect(error.retryAfterSeconds == expected.retryAfterSeconds)
    }

    @Test func the503sCarryARetryHintAndNothingElseDoes() {
        let all: [StoreFailure] = [
            .busy, .unreachable, .readOnly, .full, .corrupt, .cannotOpen, .cannotCreateFolder, .ioFailure,
            .loginRefused, .noSuchDatabase, .tlsRefused, .tlsNotOffered, .serverNotTrusted, .protocolViolation,
            .unknownSchema(found: 9, known: 2), .failed,
        ]
        var messages: [String] = []
        for failure in all {
            let error = failure.error()
            #expect((error.retryAfterSeconds != nil) == (error.code.status == 503), "\(failure)")
            #expect([.storeBusy, .storeUnreachable, .storeUnavailable].contains(error.code))
            messages.append(error.message)
        }
        #expect(Set(messages).count == messages.count, "each failure has its own message")
    }

    @Test func underlyingErrorDecidesTheRetryNotTheMessage() {
        let conflict = PostgresError(.server, "could not serialize access", sqlState: "40001").claimError(context: "t")
        #expect((conflict.underlying as? PostgresError)?.isTransient == true)
        let lock = PostgresError(.server, "lock timeout", sqlState: "55P03").claimError(context: "t")
        #expect((lock.underlying as? PostgresError)?.isTransient == false)
        #expect(conflict.message == lock.message && conflict.code == .storeBusy)
    }

    @Test func networkFailuresAreRetryableExceptTLS() {
        let refused = PostgresError(NetworkFailure(.connect, "127.0.0.1:1: Connection refused"))
        #expect(refused.claimError(context: "connect").code == .storeUnreachable)
        #expect(refused.claimError(context: "connect").retryAfterSeconds == 1)
        #expect(PostgresError(NetworkFailure(.tls, "bad cert")).claimError(context: "c").code == .storeUnavailable)
    }

    @Test func logDetailCarriesTheSQLNotTheValues() throws {
        let body = Array("SERROR\0C23505\0Mduplicate\0Dsecret\0\0".utf8)
        guard case .error(let fields) = try BackendMessage.decode(type: UInt8(ascii: "E"), body: body[...]) else {
            Issue.record("not an error")
            return
        }
        var error = PostgresError(fields)
        error.sql = "INSERT INTO t\n    VALUES ($1)"
        let detail = error.claimError(context: "claim").detail ?? ""
        #expect(detail == "claim: PostgreSQL error 23505: duplicate in `INSERT INTO t VALUES ($1)`")
    }

    @Test func serverTextLosesThePassword() {
        var error = PostgresError(.server, "role \"s3cr3t\" does not exist; s3cr3ts3cr3t", sqlState: "28000")
        error.constraint = "c_s3cr3t"
        let clean = error.redacting("s3cr3t")
        #expect(clean.message == "role \"[password]\" does not exist; [password][password]")
        #expect(clean.constraint == "c_[password]")
        #expect(clean.sqlState == "28000")
        #expect(error.redacting(nil) == error && error.redacting("") == error)
        #expect(PostgresError(.server, "é p@ss é").redacting("p@ss").message == "é [password] é")
    }
}
