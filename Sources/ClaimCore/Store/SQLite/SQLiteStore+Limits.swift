/// LeetCode request slots and the shared breaker on the SQLite file. `BEGIN IMMEDIATE` serializes every writer, so
/// reading the windows and taking the slot in one write transaction is race-free across processes. The slot is
/// inserted before everyone's window is read: its number (the rowid, free to know) then finds the limit-th newest
/// before it by one lookup, and a refusal rolls the insert back.
extension SQLiteStore {
    public func reserveLeetCodeRequest(userID: String, limits: Limits, nowMs: Int64) throws(ClaimError) -> LeetCodeSlot
    {
        try connection.inWritersTurn { () throws(ClaimError) -> LeetCodeSlot in
            try setUp()
            // A slot has to outlive a crashed process, not a power cut: one lost to a power cut only frees a slot
            // early. In WAL mode its commit can therefore skip the fsync (synchronous=NORMAL keeps the file
            // consistent and syncs the WAL before a checkpoint, https://sqlite.org/pragma.html#pragma_synchronous);
            // the next FULL commit syncs the WAL with it. Not in delete mode, where NORMAL may corrupt the file on a
            // power cut.
            let skipFsync = journal == .wal && sync == .full
            if skipFsync { try setSynchronous("NORMAL") }
            let taken: Result<LeetCodeSlot, ClaimError>
            do throws(ClaimError) {
                taken = .success(try reserve(userID: userID, limits: limits, nowMs: nowMs))
            } catch {
                taken = .failure(error)
            }
            if skipFsync {
                do throws(ClaimError) {
                    try setSynchronous("FULL")
                } catch {
                    // Never leave a kept connection (AWS Lambda) committing claims without the fsync: the next use
                    // sets `synchronous` again. The slot itself is taken, so the request may go.
                    isSetUp = false
                }
            }
            return try taken.get()
        }
    }

    private func reserve(userID: String, limits: Limits, nowMs: Int64) throws(ClaimError) -> LeetCodeSlot {
        try connection.writeTransaction { () throws(ClaimError) -> LeetCodeSlot in
            // The clock read under the lock, so that slots are numbered in the order of their times.
            let nowMs = max(nowMs, Clock.nowMs())
            let breaker: String?
            let callersNth: String?
            let everyonesNth: String?
            let seq: Int64
            do throws(SQLiteError) {
                breaker = try connection.query(LimitsSQL.breaker).first?.first ?? nil
                let callersSlots =
                    try connection.query(
                        LimitsSQL.callerCount, limits.callerCountParameters(userID: userID, nowMs: nowMs)
                    ).first?.first.flatMap { $0 }.flatMap { Int($0) } ?? 0
                callersNth =
                    callersSlots < limits.verifyPerHour
                    ? nil
                    : try connection.query(
                        LimitsSQL.callerWindow, limits.callerWindowParameters(userID: userID, nowMs: nowMs)
                    ).first?.first ?? nil
                try connection.query(LimitsSQL.takeSlot, [Clock.rfc3339(ms: nowMs), userID])
                seq = connection.lastInsertRowID
                everyonesNth =
                    try connection.query(
                        LimitsSQL.slotNumbered, [String(seq - Int64(limits.leetcodePerMinute))]
                    ).first?.first ?? nil
            } catch {
                throw error.claimError(context: "leetcode slot")
            }
            let (slot, leased) = try limits.admit(
                breaker: LeetCodeBreaker(state: breaker), callersNth: callersNth,
                everyonesNth: everyonesNth, nowMs: nowMs)
            do throws(SQLiteError) {
                if seq % LimitsSQL.pruneEvery == 0 {
                    try connection.query(LimitsSQL.pruneSlots, [Clock.rfc3339(ms: nowMs - Limits.hourMs)])
                }
                if let leased { try connection.query(LimitsSQL.saveBreaker, [leased.state]) }
            } catch {
                throw error.claimError(context: "leetcode slot")
            }
            return slot
        }
    }

    private func setSynchronous(_ level: String) throws(ClaimError) {
        do throws(SQLiteError) {
            try connection.query("PRAGMA synchronous=\(level)")
        } catch {
            throw error.claimError(context: "synchronous")
        }
    }

    @discardableResult
    public func recordLeetCodeAnswer(
        _ answer: LeetCodeAnswer, slot: LeetCodeSlot, limits: Limits, failure: VerifyFailure?, nowMs: Int64
    ) throws(ClaimError) -> Int? {
        try write { () throws(ClaimError) -> Int? in
            let nowMs = max(nowMs, Clock.nowMs())
            let breaker: LeetCodeBreaker
            do throws(SQLiteError) {
                breaker = LeetCodeBreaker(state: try connection.query(LimitsSQL.breaker).first?.first ?? nil)
            } catch {
                throw error.claimError(context: "breaker")
            }
            let (next, pause) = breaker.after(
                answer, slot: slot, failuresToOpen: limits.breakerFailures, nowMs: nowMs)
            if next != breaker {
                do throws(SQLiteError) {
                    try connection.query(LimitsSQL.saveBreaker, [next.state])
                } catch {
                    throw error.claimError(context: "breaker")
                }
            }
            if let failure {
                try recordEvent(
                    "verify_failed", username: failure.username, userID: failure.userID,
                    requestID: failure.requestID, at: Clock.rfc3339(ms: nowMs), detail: failure.code.rawValue)
            }
            return pause
        }
    }
}
