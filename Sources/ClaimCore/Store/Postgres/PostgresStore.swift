#if canImport(Glibc)
import Glibc
#endif

/// The claim store on a PostgreSQL server, for functions that run on more than one host: the same tables, the same
/// guarded upsert and the same contract as `SQLiteStore`.
///
/// Write transactions run at READ COMMITTED. That is enough: `INSERT … ON CONFLICT DO UPDATE` locks the conflicting
/// row and evaluates its WHERE guard on the latest committed version
/// (https://www.postgresql.org/docs/15/sql-insert.html#SQL-ON-CONFLICT), and a concurrent insert of the same key
/// waits for the first to finish, so the guard decides every race the way SQLite's `BEGIN IMMEDIATE` does.
public final class PostgresStore: ClaimStore {
    /// The schema version this binary writes (the `schema_version` table); the same numbering as SQLite's.
    public static let schemaVersion = 3
    /// `pg_advisory_xact_lock` key that serializes migrations across processes: "lc-claim" in ASCII.
    static let migrationLock = "7810136083833907565"

    /// Replaced only by `prepare` or its retry, when the server closed it (PostgresStore+Reuse.swift).
    var connection: PostgresConnection
    let busyTimeoutMs: Int
    let ioSlackMs: Int
    let url: PostgresURL
    let cas: PostgresConnection.TrustedCAs
    /// The current invocation's answer-by time (`prepare`): every wait ends before it.
    var answerBy: Deadline?
    /// The connection came from an earlier invocation and has not completed a round trip in this one: if it turns
    /// out dead, it is replaced once and the work run again (PostgresStore+Reuse.swift).
    var untestedReuse = false
    /// The current attempt sent COMMIT: a lost connection then leaves its outcome unknown, so it is not run again.
    var commitSent = false
    /// A transaction is being run: a read inside it leaves replacing a lost connection to `transaction`, which runs
    /// the whole attempt again from BEGIN (the BEGIN and settings queued with the read were lost with it).
    private var inTransaction = false
    /// The schema version was found to be this binary's. Until then the first round trip carries the version check
    /// with its own statements, which saves a round trip per process; another version, or a server error instead of
    /// the version, is settled by `settleSchema` (`SchemaNotChecked`).
    var schemaChecked = false

    /// Connects (TLS and authentication within the URL's connect_timeout) and migrates; with `checkSchemaOnFirstUse`
    /// the schema version is checked with the first statements instead, and migrated then if it must be.
    /// - Throws: `store_unreachable` (no server), `store_unavailable` (login refused, no database, newer schema, TLS
    ///   rejected), `store_busy` (too many connections for longer than CLAIM_BUSY_TIMEOUT_MS).
    public init(config: Config, checkSchemaOnFirstUse: Bool = false) throws(ClaimError) {
        guard let url = config.databaseURL else {
            throw ClaimError(.internal, "no PostgreSQL URL", detail: "PostgresStore without CLAIM_DATABASE_URL")
        }
        busyTimeoutMs = config.busyTimeoutMs
        // A server that stops answering is given up on after the lock budget plus this much.
        ioSlackMs = url.connectTimeoutMs + 2000
        self.url = url
        cas = PostgresConnection.TrustedCAs(file: config.http.sslCertFile, directory: config.http.sslCertDir)
        answerBy = config.answerBy
        connection = try PostgresStore.connect(url, cas: cas, busyTimeoutMs: busyTimeoutMs, answerBy: answerBy)
        if !checkSchemaOnFirstUse { try migrate() }
    }

    /// Connects; "too many clients" (53300) is retried until CLAIM_BUSY_TIMEOUT_MS, like a lock wait.
    static func connect(
        _ url: PostgresURL, cas: PostgresConnection.TrustedCAs, busyTimeoutMs: Int, answerBy: Deadline?
    ) throws(ClaimError) -> PostgresConnection {
        let giveUp = Clock.monotonicNs() + UInt64(answerBy?.capping(busyTimeoutMs) ?? busyTimeoutMs) * 1_000_000
        var attempt: UInt32 = 0
        while true {
            do throws(PostgresError) {
                return try PostgresConnection.connect(url, cas: cas, answerBy: answerBy)
            } catch  where error.sqlState == PostgresError.tooManyConnections && Clock.monotonicNs() < giveUp {
                attempt += 1
                usleep(2000 + arc4random_uniform(min(attempt, 10) * 5000))
            } catch {
                throw error.claimError(context: "connect to \(url.host):\(url.port)")
            }
        }
    }

    // MARK: - Transactions

    /// Runs `body` inside `BEGIN … COMMIT` at READ COMMITTED with lock_timeout and statement_timeout set by
    /// `SET LOCAL` (set_config(…, true)), so nothing outlives the transaction on a pooled server connection. On any
    /// error it rolls back and rethrows the first error (GRDB's `inTransaction`). Whether to run it again is
    /// decided here and only here, from the backend's own error: a serialization failure or deadlock (40001 /
    /// 40P01) is retried from the start until CLAIM_BUSY_TIMEOUT_MS has passed.
    ///
    /// BEGIN and the settings travel in the same round trip as the body's first statement, and whatever the body
    /// queued last (the audit event) travels with COMMIT.
    func transaction<T>(_ context: String, _ body: () throws(ClaimError) -> T) throws(ClaimError) -> T {
        let giveUp = Clock.monotonicNs() + UInt64(lockTimeoutMs) * 1_000_000
        var attempt: UInt32 = 0
        while true {
            do throws(ClaimError) {
                return try attemptTransaction(context, body)
            } catch  where PostgresStore.isTransient(error) && Clock.monotonicNs() < giveUp {
                attempt += 1
                usleep(1000 + arc4random_uniform(min(attempt, 10) * 2000))
            } catch  where mayReplaceLostConnection(after: error) {
                try replaceConnection()
            } catch  where error.underlying is SchemaNotChecked {
                try settleSchema(after: error)
            }
        }
    }

    /// One BEGIN … COMMIT; rolled back on any error, which is rethrown.
    private func attemptTransaction<T>(_ context: String, _ body: () throws(ClaimError) -> T) throws(ClaimError) -> T {
        connection.deadline = ioDeadline()
        commitSent = false
        inTransaction = true
        defer { inTransaction = false }
        // lock_timeout 0 would mean "wait forever"; CLAIM_BUSY_TIMEOUT_MS=0 means "do not wait".
        let lockMs = max(lockTimeoutMs, 1)
        // A statement gets a second more than the lock wait, and never more than 7/8 of an invocation's time left.
        let statementMs = max(min(lockMs + 1000, answerBy.map { Int($0.remainingMs) * 7 / 8 } ?? .max), 1)
        connection.queue("BEGIN ISOLATION LEVEL READ COMMITTED")
        connection.queue(
            "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)",
            ["\(lockMs)ms", "\(statementMs)ms"])
        do throws(ClaimError) {
            let result = try body()
            connection.queue("COMMIT")
            commitSent = true
            do throws(PostgresError) {
                try connection.flush()
            } catch {
                throw error.claimError(context: "\(context): commit")
            }
            return result
        } catch {
            rollback()
            throw error
        }
    }

    private func rollback() {
        connection.discardQueued()
        if connection.transactionStatus != .idle {
            _ = try? connection.query("ROLLBACK")
        }
    }

    /// A failure the backend itself calls transient: the whole transaction may succeed when run again.
    private static func isTransient(_ error: ClaimError) -> Bool {
        (error.underlying as? PostgresError)?.isTransient ?? false
    }

    /// Runs `statements` (after anything queued) in one round trip and returns each one's rows; until the schema
    /// version is known to be this binary's, the version check runs first in the same round trip.
    /// - Parameter oneProfilePerUser: thrown instead when the one-profile-per-user index refuses the write.
    /// - Throws: `SchemaNotChecked` (as the underlying error) when the check found another version or the server
    ///   answered with an error before the version was known: the caller rolls back and calls `settleSchema`.
    private func batch(
        _ context: String, _ statements: [(sql: String, parameters: [String?])],
        oneProfilePerUser: ClaimError? = nil
    ) throws(ClaimError) -> [[[String?]]] {
        let checking = !schemaChecked
        let results: [[[String?]]]
        do throws(PostgresError) {
            results = try connection.batch(checking ? [(PostgresStore.versionSQL, [])] + statements : statements)
            untestedReuse = false
        } catch {
            if error.kind == .server { untestedReuse = false }
            let answer: ClaimError
            if let oneProfilePerUser, error.sqlState == PostgresError.uniqueViolation,
                error.constraint == "profiles_one_per_user"
            {
                answer = oneProfilePerUser
            } else {
                answer = error.claimError(context: context)
            }
            // The server's error may be the schema's doing (an older or newer one): which, `settleSchema` finds out.
            // A lost connection and a transient failure keep their usual handling, which runs the attempt again.
            if checking, error.kind == .server, !error.endsSession, !error.isTransient {
                throw SchemaNotChecked.error(context: context, answer: answer)
            }
            throw answer
        }
        guard checking else { return results }
        guard PostgresStore.version(from: results.first ?? []) == PostgresStore.schemaVersion else {
            throw SchemaNotChecked.error(context: context, answer: nil)
        }
        schemaChecked = true
        return Array(results.dropFirst())
    }

    func run(_ context: String, _ sql: String, _ parameters: [String?] = []) throws(ClaimError) -> [[String?]] {
        try batch(context, [(sql, parameters)]).first ?? []
    }

    /// Reads are single statements; outside a transaction they wait for no lock.
    private func read(_ context: String, _ statements: [(sql: String, parameters: [String?])])
        throws(ClaimError) -> [[[String?]]]
    {
        var replaced = false
        var migrated = false
        while true {
            connection.deadline = ioDeadline()
            do throws(ClaimError) {
                return try batch(context, statements)
            } catch  where !inTransaction && !replaced && mayReplaceLostConnection(after: error) {
                replaced = true
                try replaceConnection()
            } catch  where !inTransaction && !migrated && error.underlying is SchemaNotChecked {
                migrated = true
                try settleSchema(after: error)
            }
        }
    }

    // MARK: - Claims

    // The guard admits a free profile or the caller's own. When it says no, the upsert updates nothing and
    // RETURNING yields no row: that is "already claimed". The same statement as SQLiteStore.claimSQL.
    static let claimSQL = """
        INSERT INTO profiles (username, claimed_by, claimed_at, verified_via) VALUES ($1, $2, $3, $4)
        ON CONFLICT (username) DO UPDATE SET
            claimed_by = excluded.claimed_by,
            claimed_at = CASE WHEN profiles.claimed_by = excluded.claimed_by
                THEN profiles.claimed_at ELSE excluded.claimed_at END,
            verified_via = excluded.verified_via
        WHERE profiles.claimed_by IS NULL OR profiles.claimed_by = excluded.claimed_by
        RETURNING claimed_by, claimed_at, verified_via
        """

    static let eventSQL = """
        INSERT INTO claim_events (at, event, username, user_id, request_id, detail) VALUES ($1, $2, $3, $4, $5, $6)
        """

    public func claim(
        username: String, userID: String, verifiedVia: String, profile: LeetCodeProfile? = nil, requestID: String?,
        nowMs: Int64
    ) throws(ClaimError) -> Claim {
        let now = Clock.rfc3339(ms: nowMs)
        return try transaction("claim") { () throws(ClaimError) -> Claim in
            // FOR UPDATE only names the audit event (the row cannot change before the upsert); the guard decides the
            // claim.
            let results = try batch(
                "claim",
                [
                    ("SELECT claimed_by FROM profiles WHERE username = $1 FOR UPDATE", [username]),
                    (PostgresStore.claimSQL, [username, userID, now, verifiedVia]),
                ], oneProfilePerUser: ClaimError.otherProfileHeld)
            let previousOwner = results.first?.first?.first ?? nil
            guard let row = results.last?.first, row.count == 3, let owner = row[0], let claimedAt = row[1] else {
                throw ClaimError.alreadyClaimed
            }
            // No row to lock means none was committed yet, but the caller's own concurrent claim may insert it first:
            // the upsert then waits for it and keeps its claimed_at, which only the owner's re-claim does.
            let reclaimed = previousOwner == userID || claimedAt != now
            if let profile {
                queueSnapshot(profile, username: username, userID: userID, at: now)
                connection.queue("DELETE FROM challenges WHERE user_id = $1 AND username = $2", [userID, username])
            }
            queueEvent(
                reclaimed ? "reverify" : "claim", username: username, userID: userID, requestID: requestID, at: now)
            return Claim(username: username, claimedBy: owner, claimedAt: claimedAt, verifiedVia: row[2] ?? verifiedVia)
        }
    }

    public func release(username: String, userID: String, requestID: String?, nowMs: Int64) throws(ClaimError) {
        let now = Clock.rfc3339(ms: nowMs)
        try transaction("release") { () throws(ClaimError) in
            // The SELECT runs after the UPDATE in the same transaction: it sees the row as the UPDATE left it.
            let results = try batch(
                "release",
                [
                    (
                        """
                        UPDATE profiles SET claimed_by = NULL, claimed_at = NULL, verified_via = NULL
                        WHERE username = $1 AND claimed_by = $2 RETURNING username
                        """, [username, userID]
                    ),
                    ("SELECT claimed_by FROM profiles WHERE username = $1", [username]),
                ])
            if results.first?.isEmpty ?? true {
                if (results.last?.first?.first ?? nil) == nil {
                    throw ClaimError.notClaimed
                }
                throw ClaimError.notOwner
            }
            queueEvent("release", username: username, userID: userID, requestID: requestID, at: now)
        }
    }

    public func owner(of username: String) throws(ClaimError) -> Claim? {
        let rows =
            try read(
                "status",
                [
                    (
                        """
                        SELECT claimed_by, claimed_at, verified_via FROM profiles
                        WHERE username = $1 AND claimed_by IS NOT NULL
                        """, [username]
                    )
                ]
            ).first ?? []
        guard let row = rows.first, row.count == 3, let owner = row[0], let at = row[1] else { return nil }
        return Claim(username: username, claimedBy: owner, claimedAt: at, verifiedVia: row[2] ?? "none")
    }

    func queueEvent(
        _ event: String, username: String, userID: String, requestID: String?, at: String, detail: String? = nil
    ) {
        connection.queue(PostgresStore.eventSQL, [at, event, username, userID, requestID, detail])
    }

    static let snapshotSQL = """
        UPDATE profiles SET real_name = $3, avatar_url = $4, ranking = $5, solved_easy = $6,
            solved_medium = $7, solved_hard = $8, solved_all = $9, synced_at = $10
        WHERE username = $1 AND claimed_by = $2
        RETURNING claimed_at, verified_via
        """

    private static func snapshotParameters(_ p: LeetCodeProfile, username: String, userID: String, at now: String)
        -> [String?]
    {
        [
            username, userID, p.realName, p.avatarURL, p.ranking.map(String.init), p.solvedEasy.map(String.init),
            p.solvedMedium.map(String.init), p.solvedHard.map(String.init), p.solvedAll.map(String.init), now,
        ]
    }

    private func queueSnapshot(_ p: LeetCodeProfile, username: String, userID: String, at now: String) {
        connection.queue(
            PostgresStore.snapshotSQL, PostgresStore.snapshotParameters(p, username: username, userID: userID, at: now))
    }
}

extension PostgresStore {
    public func challenge(
        username: String, userID: String, prefix: String, ttlSeconds: Int, maxLive: Int, nowMs: Int64
    ) throws(ClaimError) -> Challenge {
        let now = Clock.rfc3339(ms: nowMs)
        let code = try Challenge.newCode(prefix: prefix)
        let expiresAt = Clock.rfc3339(ms: nowMs + Int64(ttlSeconds) * 1000)
        return try transaction("challenge") { () throws(ClaimError) -> Challenge in
            _ = try refuseIfTaken(username: username, userID: userID)
            // Two concurrent challenges by one caller must answer the same code. The upsert replaces only an
            // expired challenge; otherwise it leaves the live one, locked (ON CONFLICT locks the row even when its
            // WHERE says no), and the SELECT after it returns whichever is now current. Expired challenges of
            // others are swept without waiting for rows someone else holds (SKIP LOCKED).
            // The caller's challenges for other usernames share no row, so a lock per caller serializes counting
            // them: the upsert, a later statement, counts with a snapshot taken after the lock is held. The live
            // challenge for this username is locked first: at the limit the upsert proposes no row and so locks
            // none, and a verify consuming the challenge in between would leave neither it nor a full count.
            let results = try batch(
                "challenge",
                [
                    (PostgresStore.callerLockSQL, [userID]),
                    ("SELECT 1 FROM challenges WHERE user_id = $1 AND username = $2 FOR UPDATE", [userID, username]),
                    (
                        """
                        DELETE FROM challenges WHERE (user_id, username) IN (
                            SELECT user_id, username FROM challenges WHERE expires_at <= $1 FOR UPDATE SKIP LOCKED)
                        """, [now]
                    ),
                    (
                        """
                        INSERT INTO challenges (user_id, username, code, created_at, expires_at)
                        SELECT $1, $2, $3, $4, $5
                        WHERE (SELECT count(*) FROM challenges WHERE user_id = $1 AND expires_at > $4) < $6
                        ON CONFLICT (user_id, username) DO UPDATE SET
                            code = excluded.code, created_at = excluded.created_at, expires_at = excluded.expires_at
                        WHERE challenges.expires_at <= excluded.created_at
                        """, [userID, username, code, now, expiresAt, String(maxLive)]
                    ),
                    (
                        """
                        SELECT code, expires_at FROM challenges
                        WHERE user_id = $1 AND username = $2 AND expires_at > $3
                        """, [userID, username, now]
                    ),
                ])
            if let row = results.last?.first, row.count == 2, let live = row[0], let expires = row[1] {
                return Challenge(username: username, code: live, expiresAt: expires)
            }
            // No live challenge for this username, and the count said no: the caller holds maxLive others.
            let oldestOfMax =
                try run(
                    "challenge", PostgresStore.challengeLimitSQL, [userID, now, String(maxLive - 1)]
                ).first?.first ?? nil
            guard let oldestOfMax else {
                throw ClaimError(.internal, "the challenge was not stored", detail: "challenge: no row after upsert")
            }
            // The clock read under the lock: another process may have created a challenge while this one waited.
            throw Limits.tooManyChallenges(maxLive, oldestExpiry: oldestOfMax, nowMs: max(nowMs, Clock.nowMs()))
        }
    }

    public func resync(username: String, userID: String, profile: LeetCodeProfile, requestID: String?, nowMs: Int64)
        throws(ClaimError) -> Claim?
    {
        let now = Clock.rfc3339(ms: nowMs)
        return try transaction("resync") { () throws(ClaimError) -> Claim? in
            let rows = try run(
                "snapshot", PostgresStore.snapshotSQL,
                PostgresStore.snapshotParameters(profile, username: username, userID: userID, at: now))
            guard let row = rows.first, row.count == 2, let claimedAt = row[0] else { return nil }
            queueEvent("resync", username: username, userID: userID, requestID: requestID, at: now)
            return Claim(username: username, claimedBy: userID, claimedAt: claimedAt, verifiedVia: row[1] ?? "leetcode")
        }
    }

    public func liveChallengeCode(username: String, userID: String, nowMs: Int64) throws(ClaimError) -> String? {
        let rows =
            try read(
                "challenge lookup",
                [
                    (
                        "SELECT code FROM challenges WHERE user_id = $1 AND username = $2 AND expires_at > $3",
                        [userID, username, Clock.rfc3339(ms: nowMs)]
                    )
                ]
            ).first ?? []
        return rows.first?.first ?? nil
    }

    public func refuseIfTaken(username: String, userID: String) throws(ClaimError) -> Bool {
        let results = try read(
            "pre-check",
            [
                ("SELECT claimed_by FROM profiles WHERE username = $1", [username]),
                ("SELECT username FROM profiles WHERE claimed_by = $1 AND username <> $2", [userID, username]),
            ])
        let owner = results.first?.first?.first ?? nil
        let other = results.last?.first?.first ?? nil
        if let owner, owner != userID { throw ClaimError.alreadyClaimed }
        if other != nil { throw ClaimError.otherProfileHeld }
        return owner == userID
    }
}
