/// Keeping one connection across invocations (a long-running process: AWS Lambda): each invocation's waits end
/// before its answer is due, and a connection the server closed in between is replaced once, within the invocation,
/// before the store answers `store_unreachable`.
extension PostgresStore {
    /// The lock wait of the next transaction: CLAIM_BUSY_TIMEOUT_MS, or less when the invocation's answer is due
    /// sooner.
    var lockTimeoutMs: Int { answerBy?.capping(busyTimeoutMs) ?? busyTimeoutMs }

    /// The deadline for the next round trip: the lock budget plus the slack for a server that stops answering, and
    /// never past the invocation's answer-by time.
    func ioDeadline() -> Deadline {
        Deadline(ms: busyTimeoutMs + ioSlackMs, answerBy: answerBy)
    }

    /// Rolls back anything the last invocation left open, and replaces a connection that is closed or that the
    /// server spoke on while idle (restart, pooler or idle-session timeout: PostgreSQL sends FATAL, then FIN).
    public func prepare(answerBy: Deadline?) throws(ClaimError) {
        self.answerBy = answerBy
        connection.discardQueued()
        if connection.transactionStatus != .idle && connection.isReusable {
            connection.deadline = ioDeadline()
            _ = try? connection.query("ROLLBACK")
        }
        if connection.isReusable && connection.transactionStatus == .idle {
            untestedReuse = true
            return
        }
        try replaceConnection()
    }

    /// True when `error` says that a connection kept from an earlier invocation was already gone at its first round
    /// trip in this one, before any COMMIT: the work can run again on a new connection, once.
    func mayReplaceLostConnection(after error: ClaimError) -> Bool {
        guard untestedReuse, !commitSent, let failure = error.underlying as? PostgresError else { return false }
        switch failure.kind {
        case .network(.reset): return true
        case .server:
            // admin_shutdown, crash_shutdown, cannot_connect_now, idle_session_timeout, connection_exception.
            let state = failure.sqlState ?? ""
            let gone = ["57P01", "57P02", "57P03", "57P05"].contains(state) || state.hasPrefix("08")
            return failure.endsSession && gone
        default: return false
        }
    }

    /// A new connection in place of the current one, within the invocation's time.
    /// - Throws: what connecting throws (`store_unreachable` when there is still no server).
    func replaceConnection() throws(ClaimError) {
        untestedReuse = false
        connection = try PostgresStore.connect(url, cas: cas, busyTimeoutMs: busyTimeoutMs, answerBy: answerBy)
    }
}
