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
