/// A failed PostgreSQL exchange: the server's SQLSTATE and message, or what went wrong on the way. Carries the SQL,
/// never the bound values (nor the server's DETAIL field, which quotes them: "Key (claimed_by)=(user-1)…").
struct PostgresError: Error, Equatable, CustomStringConvertible {
    enum Kind: Equatable {
        /// An ErrorResponse (https://www.postgresql.org/docs/15/protocol-error-fields.html).
        case server
        /// The socket or TLS layer failed: refused, reset, closed, timed out, certificate rejected.
        case network(NetworkFailure.Kind)
        /// The peer sent something that is not PostgreSQL's protocol v3 as this client speaks it, or more of it
        /// than a budget allows.
        case protocolViolation
        /// We cannot authenticate: an unsupported method, or no password for one that needs it.
        case authentication
        /// The server did not prove it knows the password, tried a weaker method after SCRAM began, or used a
        /// method `require_auth` forbids.
        case serverNotTrusted
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

    /// From an ErrorResponse.
    init(_ fields: BackendMessage.ServerError) {
        self.init(.server, fields.message ?? "unknown error", sqlState: fields.sqlState)
        constraint = fields.constraint
        severity = fields.severity
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

    /// A serialization failure or deadlock: the transaction may succeed when run again from the start.
    var isTransient: Bool {
        sqlState == PostgresError.serializationFailure || sqlState == PostgresError.deadlockDetected
    }

    /// This error with every occurrence of `secret` in the server's text replaced: a server may echo what it was
    /// sent (a password given as a user name, a hostile server quoting the cleartext password) into its messages.
    func redacting(_ secret: String?) -> PostgresError {
        guard let secret, !secret.isEmpty else { return self }
        var copy = self
        copy.message = message.replacingEvery(secret, with: "[password]")
        copy.constraint = constraint?.replacingEvery(secret, with: "[password]")
        copy.severity = severity?.replacingEvery(secret, with: "[password]")
        return copy
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
    static let tooManyConnections = "53300"

    /// Which `StoreFailure` this is. Retryable conditions (no server, a server going away, too many connections, a
    /// lock not obtained in time) are the 503s; what a retry cannot fix (authentication, a missing database, TLS
    /// verification, a server breaking the protocol) is `store_unavailable`.
    var failure: StoreFailure {
        switch kind {
        case .network(.tls), .network(.tlsSetup): return .tlsRefused
        case .network: return .unreachable
        case .tlsRefused: return .tlsNotOffered
        case .authentication: return .loginRefused
        case .serverNotTrusted: return .serverNotTrusted
        case .protocolViolation: return .protocolViolation
        case .server: break
        }
        let state = sqlState ?? ""
        switch state {
        case "28P01", "28000": return .loginRefused
        case "3D000": return .noSuchDatabase
        // too_many_connections, lock_not_available (lock_timeout), query_canceled (statement_timeout)
        case PostgresError.tooManyConnections, "55P03", "57014": return .busy
        case PostgresError.serializationFailure, PostgresError.deadlockDetected: return .busy
        // admin_shutdown, crash_shutdown, cannot_connect_now: the server is stopping or starting.
        case "57P01", "57P02", "57P03": return .unreachable
        case "25006": return .readOnly
        case "53100": return .full
        // PgBouncer refuses a login with 08P01 too ("SASL authentication failed", "password authentication failed"),
        // and also reports a server login that keeps failing on its password so: no retry fixes either.
        case "08P01" where message.hasSubstring("authentication failed"): return .loginRefused
        default: return state.hasPrefix("08") ? .unreachable : .failed  // 08: connection_exception
        }
    }

    /// The contract error, with this error as its underlying cause and `context` in the log's detail.
    func claimError(context: String) -> ClaimError {
        failure.error(detail: "\(context): \(description)", underlying: self)
    }
}

extension String {
    /// Every non-overlapping occurrence of `target` (compared byte for byte) replaced by `replacement`.
    fileprivate func replacingEvery(_ target: String, with replacement: String) -> String {
        let text = Array(utf8)
        let needle = Array(target.utf8)
        guard !needle.isEmpty, text.count >= needle.count else { return self }
        var out: [UInt8] = []
        var i = 0
        var changed = false
        while i < text.count {
            if text[i] == needle[0], text.count - i >= needle.count, text[i..<i + needle.count].elementsEqual(needle) {
                out += replacement.utf8
                i += needle.count
                changed = true
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return changed ? String(decoding: out, as: UTF8.self) : self
    }
}
