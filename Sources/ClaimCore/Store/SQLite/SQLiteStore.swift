import CSQLite

#if canImport(Glibc)
import Glibc
#endif

/// The claim store on an SQLite file: one guarded upsert decides every claim.
public final class SQLiteStore: ClaimStore {
    /// The schema version this binary writes (`PRAGMA user_version`).
    public static let schemaVersion = 3

    let connection: SQLiteConnection
    let journal: Config.Journal
    let sync: Config.Sync
    /// True once the schema version was checked, the journal mode and `synchronous` set and the schema migrated.
    /// A slot's reservation clears it when it cannot put `synchronous` back, so that the next use sets it again.
    var isSetUp = false

    /// Opens the database, creating its folder and file when missing; with `prepareOnFirstUse` false (the
    /// default) it also checks the schema version, sets the journal mode and migrates, else the first use does.
    /// Deferred, a process whose first use is a write reads nothing before its turn among the writers (see
    /// `write`): in a burst, no reader then holds SQLite's lock while the writer in turn commits.
    /// - Throws: `store_unavailable` (cannot open, read-only, corrupt, newer schema) or `store_busy`.
    public init(config: Config, prepareOnFirstUse: Bool = false) throws(ClaimError) {
        let path = config.databasePath
        try SQLiteStore.createParentFolder(of: path)
        do throws(SQLiteError) {
            connection = try SQLiteConnection(path: path, busyTimeoutMs: config.busyTimeoutMs)
        } catch {
            throw error.claimError(context: "open")
        }
        connection.answerBy = config.answerBy
        journal = config.journal
        sync = config.sync
        // A folder we cannot write is read-only too: SQLite needs it for its journal or WAL files, and answering
        // reads while refusing writes would hide the fault until the first claim.
        if connection.isReadOnly || access(SQLiteStore.folder(of: path), W_OK) != 0 {
            throw StoreFailure.readOnly.error(detail: "open \(path): read-only")
        }
        if !prepareOnFirstUse { try setUp() }
    }

    /// Checks the schema version, sets the journal mode and `synchronous`, and migrates, once.
    func setUp() throws(ClaimError) {
        if isSetUp { return }
        // Refuse a newer schema before changing anything about the file, its journal mode included.
        let version = try currentVersion()
        if !(0...SQLiteStore.schemaVersion).contains(version) {
            throw StoreFailure.unknownSchema(found: version, known: SQLiteStore.schemaVersion).error()
        }
        try setJournalMode(journal, busyTimeoutMs: connection.busyTimeoutMs)
        do throws(SQLiteError) {
            try connection.query("PRAGMA synchronous=\(sync == .full ? "FULL" : "NORMAL")")
        } catch {
            throw error.claimError(context: "synchronous")
        }
        try migrate(from: version)
        isSetUp = true
    }

    /// A write transaction with everything it needs, the first use's `setUp` included, inside this process's turn
    /// among the writers.
    func write<T>(_ body: () throws(ClaimError) -> T) throws(ClaimError) -> T {
        try connection.inWritersTurn { () throws(ClaimError) -> T in
            try setUp()
            return try connection.writeTransaction(body)
        }
    }

    // The guard admits a free profile or the caller's own. When it says no, the upsert updates nothing and
    // RETURNING yields no row: that is "already claimed" (https://sqlite.org/lang_upsert.html).
    static let claimSQL = """
        INSERT INTO profiles (username, claimed_by, claimed_at, verified_via) VALUES (?1, ?2, ?3, ?4)
        ON CONFLICT (username) DO UPDATE SET
            claimed_by = excluded.claimed_by,
            claimed_at = CASE WHEN profiles.claimed_by = excluded.claimed_by
                THEN profiles.claimed_at ELSE excluded.claimed_at END,
            verified_via = excluded.verified_via
        WHERE profiles.claimed_by IS NULL OR profiles.claimed_by = excluded.claimed_by
        RETURNING claimed_by, claimed_at, verified_via
        """

    static let eventSQL = """
        INSERT INTO claim_events (at, event, username, user_id, request_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
        """

    public func claim(
        username: String, userID: String, verifiedVia: String, profile: LeetCodeProfile? = nil, requestID: String?,
        nowMs: Int64
    ) throws(ClaimError) -> Claim {
        let now = Clock.rfc3339(ms: nowMs)
        return try write { () throws(ClaimError) -> Claim in
            let rows: [[String?]]
            let previousOwner: String?
            do throws(SQLiteError) {
                // Only to name the audit event: the write lock is held, and the guard below decides the claim.
                previousOwner =
                    try connection.query("SELECT claimed_by FROM profiles WHERE username = ?1", [username])
                    .first?.first ?? nil
                rows = try connection.query(SQLiteStore.claimSQL, [username, userID, now, verifiedVia])
            } catch  where error.code == SQLiteError.constraintUnique && error.message.hasSubstring("claimed_by") {
                throw ClaimError.otherProfileHeld
            } catch {
                throw error.claimError(context: "claim")
            }
            guard let row = rows.first, let owner = row[0], let claimedAt = row[1] else {
                throw ClaimError.alreadyClaimed
            }
            let event = previousOwner == userID ? "reverify" : "claim"
            if let profile {
                try storeSnapshot(profile, username: username, userID: userID, at: now)
                do throws(SQLiteError) {
                    try connection.query(
                        "DELETE FROM challenges WHERE user_id = ?1 AND username = ?2", [userID, username])
                } catch {
                    throw error.claimError(context: "consume challenge")
                }
            }
            try recordEvent(event, username: username, userID: userID, requestID: requestID, at: now)
            return Claim(username: username, claimedBy: owner, claimedAt: claimedAt, verifiedVia: row[2] ?? verifiedVia)
        }
    }

    public func release(username: String, userID: String, requestID: String?, nowMs: Int64) throws(ClaimError) {
        let now = Clock.rfc3339(ms: nowMs)
        try write { () throws(ClaimError) in
            let released: [[String?]]
            let owner: String?
            do throws(SQLiteError) {
                released = try connection.query(
                    """
                    UPDATE profiles SET claimed_by = NULL, claimed_at = NULL, verified_via = NULL
                    WHERE username = ?1 AND claimed_by = ?2 RETURNING username
                    """, [username, userID])
                owner =
                    released.isEmpty
                    ? try connection.query("SELECT claimed_by FROM profiles WHERE username = ?1", [username])
                        .first?.first ?? nil
                    : nil
            } catch {
                throw error.claimError(context: "release")
            }
            if released.isEmpty {
                if owner == nil {
                    throw ClaimError.notClaimed
                }
                throw ClaimError.notOwner
            }
            try recordEvent("release", username: username, userID: userID, requestID: requestID, at: now)
        }
    }

    /// The handle stays open across invocations; each wait is bounded by the invocation's deadline as it starts
    /// (`SQLiteConnection.busyTimeoutMs`). A transaction is never left open (each rolls back on error), and one
    /// found open anyway is rolled back: it would hold the write lock against every other writer.
    public func prepare(answerBy: Deadline?) throws(ClaimError) {
        connection.rollback()
        connection.answerBy = answerBy
    }

    public func owner(of username: String) throws(ClaimError) -> Claim? {
        try setUp()
        let rows: [[String?]]
        do throws(SQLiteError) {
            rows = try connection.query(
                "SELECT claimed_by, claimed_at, verified_via FROM profiles WHERE username = ?1 AND claimed_by IS NOT NULL",
                [username])
        } catch {
            throw error.claimError(context: "status")
        }
        guard let row = rows.first, let owner = row[0], let at = row[1] else { return nil }
        return Claim(username: username, claimedBy: owner, claimedAt: at, verifiedVia: row[2] ?? "none")
    }

    func recordEvent(
        _ event: String, username: String, userID: String, requestID: String?, at: String,
        detail: String? = nil
    ) throws(ClaimError) {
        do throws(SQLiteError) {
            try connection.query(SQLiteStore.eventSQL, [at, event, username, userID, requestID, detail])
        } catch {
            throw error.claimError(context: "event")
        }
    }
}

extension SQLiteStore {
    public func challenge(
        username: String, userID: String, prefix: String, ttlSeconds: Int, maxLive: Int, nowMs: Int64
    ) throws(ClaimError) -> Challenge {
        let now = Clock.rfc3339(ms: nowMs)
        return try write { () throws(ClaimError) -> Challenge in
            _ = try refuseIfTaken(username: username, userID: userID)
            let oldestOfMax: String?
            do throws(SQLiteError) {
                try connection.query("DELETE FROM challenges WHERE expires_at <= ?1", [now])
                if let live = try connection.query(
                    "SELECT code, expires_at FROM challenges WHERE user_id = ?1 AND username = ?2", [userID, username]
                ).first, let code = live[0], let expiresAt = live[1] {
                    return Challenge(username: username, code: code, expiresAt: expiresAt)
                }
                oldestOfMax =
                    try connection.query(LimitsSQL.challengeLimit, [userID, now, String(maxLive - 1)]).first?.first
                    ?? nil
            } catch {
                throw error.claimError(context: "challenge")
            }
            if let oldestOfMax {
                // The clock read under the lock: another process may have created a challenge while this one waited.
                throw Limits.tooManyChallenges(maxLive, oldestExpiry: oldestOfMax, nowMs: max(nowMs, Clock.nowMs()))
            }
            let code = try Challenge.newCode(prefix: prefix)
            let expiresAt = Clock.rfc3339(ms: nowMs + Int64(ttlSeconds) * 1000)
            do throws(SQLiteError) {
                try connection.query(
                    "INSERT INTO challenges (user_id, username, code, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    [userID, username, code, now, expiresAt])
            } catch {
                throw error.claimError(context: "challenge")
            }
            return Challenge(username: username, code: code, expiresAt: expiresAt)
        }
    }

    public func resync(username: String, userID: String, profile: LeetCodeProfile, requestID: String?, nowMs: Int64)
        throws(ClaimError) -> Claim?
    {
        let now = Clock.rfc3339(ms: nowMs)
        return try write { () throws(ClaimError) -> Claim? in
            guard let claim = try storeSnapshot(profile, username: username, userID: userID, at: now) else {
                return nil
            }
            try recordEvent("resync", username: username, userID: userID, requestID: requestID, at: now)
            return claim
        }
    }

    @discardableResult
    private func storeSnapshot(_ p: LeetCodeProfile, username: String, userID: String, at now: String)
        throws(ClaimError) -> Claim?
    {
        let rows: [[String?]]
        do throws(SQLiteError) {
            rows = try connection.query(
                """
                UPDATE profiles SET real_name = ?3, avatar_url = ?4, ranking = ?5, solved_easy = ?6,
                    solved_medium = ?7, solved_hard = ?8, solved_all = ?9, synced_at = ?10
                WHERE username = ?1 AND claimed_by = ?2
                RETURNING claimed_at, verified_via
                """,
                [
                    username, userID, p.realName, p.avatarURL, p.ranking.map(String.init),
                    p.solvedEasy.map(String.init), p.solvedMedium.map(String.init), p.solvedHard.map(String.init),
                    p.solvedAll.map(String.init), now,
                ])
        } catch {
            throw error.claimError(context: "snapshot")
        }
        guard let row = rows.first, let claimedAt = row[0] else { return nil }
        return Claim(username: username, claimedBy: userID, claimedAt: claimedAt, verifiedVia: row[1] ?? "leetcode")
    }

    public func liveChallengeCode(username: String, userID: String, nowMs: Int64) throws(ClaimError) -> String? {
        try setUp()
        do throws(SQLiteError) {
            return try connection.query(
                "SELECT code FROM challenges WHERE user_id = ?1 AND username = ?2 AND expires_at > ?3",
                [userID, username, Clock.rfc3339(ms: nowMs)]
            ).first?.first ?? nil
        } catch {
            throw error.claimError(context: "challenge lookup")
        }
    }

    public func refuseIfTaken(username: String, userID: String) throws(ClaimError) -> Bool {
        try setUp()
        let owner: String?
        let other: String?
        do throws(SQLiteError) {
            owner =
                try connection.query("SELECT claimed_by FROM profiles WHERE username = ?1", [username])
                .first?.first ?? nil
            other =
                try connection.query(
                    "SELECT username FROM profiles WHERE claimed_by = ?1 AND username <> ?2", [userID, username]
                ).first?.first ?? nil
        } catch {
            throw error.claimError(context: "pre-check")
        }
        if let owner, owner != userID {
            throw ClaimError.alreadyClaimed
        }
        if other != nil {
            throw ClaimError.otherProfileHeld
        }
        return owner == userID
    }
}
