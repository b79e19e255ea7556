/// LeetCode request slots and the shared breaker on PostgreSQL. At READ COMMITTED two transactions could both count
/// a window and both take its last slot, so every reservation and breaker update first takes one transaction-scoped
/// advisory lock; the statements after it read with snapshots taken once the lock is held. A reservation is two
/// round trips: the lock and the reads, then the slot with COMMIT.
extension PostgresStore {
    // Two-key advisory locks ("lccl" in ASCII, then what is locked) never meet the migration's one-key lock.
    /// Serializes LeetCode slot reservations and breaker updates.
    static let limiterLockSQL = "SELECT pg_advisory_xact_lock(1818452844, 0)"
    /// The same lock for a reservation, whose commit need not wait for the WAL flush (set for this transaction only):
    /// a slot has to outlive a crashed client, not a crashed server
    /// (https://www.postgresql.org/docs/15/wal-async-commit.html).
    static let slotLockSQL = """
        SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(1818452844, 0)
        """
    /// Serializes one caller's challenges, so that counting them is race-free (a hash collision only serializes more).
    static let callerLockSQL = "SELECT pg_advisory_xact_lock(1818452844, hashtext($1))"
    /// `LimitsSQL`'s statements in PostgreSQL's placeholders.
    static let challengeLimitSQL = LimitsSQL.postgres(LimitsSQL.challengeLimit)
    static let pruneSlotsSQL = LimitsSQL.postgres(LimitsSQL.pruneSlots)
    static let saveBreakerSQL = LimitsSQL.postgres(LimitsSQL.saveBreaker)

    /// Everything a reservation reads, in one statement: the server parses and plans each statement anew, and plans
    /// scalar subqueries cheaply (SQLite is the other way round). The newest slot's number, the caller's
    /// (`LimitsSQL.callerWindow`) and everyone's limit-th newest slot (by number, `LimitsSQL.slotNumbered`), then the
    /// breaker.
    static let slotCheckSQL = """
        SELECT (SELECT max(seq) FROM leetcode_requests),
            (\(LimitsSQL.postgres(LimitsSQL.callerWindow))),
            (SELECT at FROM leetcode_requests WHERE seq = (SELECT max(seq) FROM leetcode_requests) - $4),
            b.state
        FROM (SELECT 1) AS one LEFT JOIN leetcode_breaker AS b ON b.id = 1
        """

    /// `LimitsSQL.takeSlot` with the slot's number: the largest plus one, under the lock (SQLite's rowid does that).
    /// A sequence would leave gaps when a transaction rolls back, and the window lookup needs none.
    static let takeSlotSQL = "INSERT INTO leetcode_requests (seq, at, user_id) VALUES ($1, $2, $3)"

    public func reserveLeetCodeRequest(userID: String, limits: Limits, nowMs: Int64) throws(ClaimError) -> LeetCodeSlot
    {
        try transaction("leetcode slot") { () throws(ClaimError) -> LeetCodeSlot in
            connection.queue(PostgresStore.slotLockSQL)
            let row =
                try run(
                    "leetcode slot", PostgresStore.slotCheckSQL,
                    limits.callerWindowParameters(userID: userID, nowMs: nowMs) + limits.everyoneWindowParameters
                ).first ?? []
            guard row.count == 4 else {
                throw ClaimError(.internal, "the store answered oddly", detail: "leetcode slot: \(row.count) columns")
            }
            // The clock read once the lock is held, so that slots are numbered in the order of their times.
            let nowMs = max(nowMs, Clock.nowMs())
            let (slot, leased) = try limits.admit(
                breaker: LeetCodeBreaker(state: row[3]), callersNth: row[1], everyonesNth: row[2],
                nowMs: nowMs)
            let seq = (row[0].flatMap { Int64($0) } ?? 0) + 1
            connection.queue(PostgresStore.takeSlotSQL, [String(seq), Clock.rfc3339(ms: nowMs), userID])
            if seq % LimitsSQL.pruneEvery == 0 {
                connection.queue(PostgresStore.pruneSlotsSQL, [Clock.rfc3339(ms: nowMs - Limits.hourMs)])
            }
            if let leased { connection.queue(PostgresStore.saveBreakerSQL, [leased.state]) }
            return slot
        }
    }

    @discardableResult
    public func recordLeetCodeAnswer(
        _ answer: LeetCodeAnswer, slot: LeetCodeSlot, limits: Limits, failure: VerifyFailure?, nowMs: Int64
    ) throws(ClaimError) -> Int? {
        try transaction("breaker") { () throws(ClaimError) -> Int? in
            connection.queue(PostgresStore.limiterLockSQL)
            let breaker = LeetCodeBreaker(state: try run("breaker", LimitsSQL.breaker).first?.first ?? nil)
            let nowMs = max(nowMs, Clock.nowMs())
            let (next, pause) = breaker.after(
                answer, slot: slot, failuresToOpen: limits.breakerFailures, nowMs: nowMs)
            if next != breaker { connection.queue(PostgresStore.saveBreakerSQL, [next.state]) }
            if let failure {
                queueEvent(
                    "verify_failed", username: failure.username, userID: failure.userID,
                    requestID: failure.requestID, at: Clock.rfc3339(ms: nowMs), detail: failure.code.rawValue)
            }
            return pause
        }
    }
}
