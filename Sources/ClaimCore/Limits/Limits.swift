/// The abuse limits every process enforces through the claim store it shares with the others: live challenges per
/// caller, LeetCode requests per caller per hour and for everyone per minute, and the breaker's failure count.
public struct Limits: Sendable, Equatable {
    /// CLAIM_MAX_LIVE_CHALLENGES: live challenges one caller may hold.
    public var maxLiveChallenges = 3
    /// CLAIM_VERIFY_PER_HOUR: LeetCode requests made for one caller in any rolling hour.
    public var verifyPerHour = 10
    /// CLAIM_LEETCODE_PER_MINUTE: LeetCode requests made by every process sharing the store in any rolling minute.
    public var leetcodePerMinute = 60
    /// CLAIM_BREAKER_FAILURES: timeouts and 5xx in a row, within a minute, that pause LeetCode requests.
    public var breakerFailures = 5
    /// How long the probe after a pause has before another process may probe instead (LEETCODE_TIMEOUT_MS + 1 s).
    public var probeLeaseMs: Int64 = 6000

    /// The caller's window, and how long a slot is kept.
    static let hourMs: Int64 = 3_600_000
    /// Everyone's window.
    static let minuteMs: Int64 = 60_000

    /// Whole seconds from `nowMs` until `ms`, rounded up and at least 1: a `retry_after_s`.
    static func seconds(until ms: Int64, nowMs: Int64) -> Int {
        max(1, Int((ms - nowMs + 999) / 1000))
    }

    /// The parameters of `LimitsSQL.callerWindow`: the caller, the hour's start, the offset of its limit-th newest slot.
    func callerWindowParameters(userID: String, nowMs: Int64) -> [String?] {
        [userID, Clock.rfc3339(ms: nowMs - Limits.hourMs), String(verifyPerHour - 1)]
    }

    /// How far back from the newest slot everyone's limit-th newest is.
    var everyoneWindowParameters: [String?] { [String(leetcodePerMinute - 1)] }

    /// Decides a reservation from what the store read under its write lock: the breaker, the caller's limit-th newest
    /// slot of the hour and everyone's limit-th newest slot (nil when there are fewer). Returns the slot, and the
    /// breaker to store when taking the slot changed it (the probe's lease after a pause).
    /// - Throws: `rate_limited` (the caller's hour is used up), then the breaker's pause (`leetcode_rate_limited` /
    ///   `leetcode_unavailable`), then `leetcode_rate_limited` (everyone's minute is used up).
    func admit(breaker: LeetCodeBreaker, callersNth: String?, everyonesNth: String?, nowMs: Int64)
        throws(ClaimError) -> (slot: LeetCodeSlot, breaker: LeetCodeBreaker?)
    {
        // A window whose limit-th newest slot is still inside it is full, and frees a slot exactly when that one ages
        // out (right even after a limit was lowered).
        if let text = callersNth, let oldest = Clock.ms(rfc3339: text), oldest > nowMs - Limits.hourMs {
            throw ClaimError(
                .rateLimited,
                "you have used your \(verifyPerHour) LeetCode verification\(verifyPerHour == 1 ? "" : "s") for this "
                    + "hour; try again later",
                retryAfterSeconds: Limits.seconds(until: oldest + Limits.hourMs, nowMs: nowMs),
                detail: "CLAIM_VERIFY_PER_HOUR=\(verifyPerHour) reached")
        }
        let admission = try breaker.admit(nowMs: nowMs)
        if let text = everyonesNth, let oldest = Clock.ms(rfc3339: text), oldest > nowMs - Limits.minuteMs {
            throw ClaimError(
                .leetcodeRateLimited,
                "this service is making as many requests to LeetCode as it allows itself; try again shortly",
                retryAfterSeconds: Limits.seconds(until: oldest + Limits.minuteMs, nowMs: nowMs),
                detail: "CLAIM_LEETCODE_PER_MINUTE=\(leetcodePerMinute) reached")
        }
        guard admission == .probe else {
            return (LeetCodeSlot(probe: false, breakerWasClean: breaker.isClean), nil)
        }
        var leased = breaker
        leased.probeUntil = nowMs + probeLeaseMs
        return (LeetCodeSlot(probe: true, breakerWasClean: false), leased)
    }

    /// The refusal of a challenge for one more username when the caller holds `maxLive` live ones, given the
    /// `maxLive`-th newest one's expiry (`LimitsSQL.challengeLimit`): one more is allowed when that one expires.
    static func tooManyChallenges(_ maxLive: Int, oldestExpiry: String, nowMs: Int64) -> ClaimError {
        let expiry = Clock.ms(rfc3339: oldestExpiry) ?? nowMs
        return ClaimError(
            .rateLimited,
            "you already hold \(maxLive) live challenge\(maxLive == 1 ? "" : "s"), the most allowed; verify one or "
                + "let it expire before asking for another",
            retryAfterSeconds: Limits.seconds(until: expiry, nowMs: nowMs),
            detail: "CLAIM_MAX_LIVE_CHALLENGES=\(maxLive) reached")
    }
}

/// A LeetCode request slot, taken in a short write transaction before the request is sent.
public struct LeetCodeSlot: Sendable, Equatable {
    /// This request is the one probe after the breaker's pause: its answer closes or re-opens the breaker.
    var probe: Bool
    /// The breaker was closed with nothing counted: an ordinary answer needs no write.
    var breakerWasClean: Bool
}

/// A `verify` that LeetCode's answer (or its absence) failed: appended as a `verify_failed` event.
public struct VerifyFailure: Sendable {
    var username: String
    var userID: String
    var requestID: String?
    var code: ClaimError.Code
}

/// The statements of the limits, written once with SQLite's `?N` placeholders; PostgreSQL runs the same text with
/// `$N` (`postgres(_:)`), except that it reads a reservation's inputs in one statement (`PostgresStore+Limits`).
/// Times are the store's fixed-width RFC 3339 text, so text order is time order.
enum LimitsSQL {
    // SQLite prepares every statement anew in every process, and spends more on a subquery than on another plain
    // statement (callgrind, BENCHMARKS.md): these are plain.

    /// How many slots the caller took in the last hour (`callerWindowParameters` without the offset): cheaper to
    /// prepare than `callerWindow`, which SQLite runs only when the window is full.
    static let callerCount = "SELECT count(*) FROM leetcode_requests WHERE user_id = ?1 AND at > ?2"

    /// The caller's `verifyPerHour`-th newest slot of the last hour: no row while the window has room. It walks the
    /// caller's own slots of the hour, at most `verifyPerHour` of them.
    static let callerWindow = """
        SELECT at FROM leetcode_requests WHERE user_id = ?1 AND at > ?2 ORDER BY at DESC LIMIT 1 OFFSET ?3
        """

    /// The slot numbered ?1. Slots are numbered without gaps in the order they are taken (pruning removes only the
    /// oldest), so everyone's `leetcodePerMinute`-th newest is one lookup whatever the limit.
    static let slotNumbered = "SELECT at FROM leetcode_requests WHERE seq = ?1"

    /// One slot, taken now by the caller; SQLite numbers it (the rowid is the largest plus one).
    static let takeSlot = "INSERT INTO leetcode_requests (at, user_id) VALUES (?1, ?2)"

    /// Slots older than the longest window (an hour) count for nothing: deletes those among the 128 lowest numbers
    /// (the oldest, but for clock skew between hosts). Run after every `pruneEvery`-th slot, it removes them faster
    /// than they come, so the table holds at most the last hour's slots plus 128, without an index on `at`.
    static let pruneSlots = """
        DELETE FROM leetcode_requests WHERE seq IN (SELECT seq FROM leetcode_requests ORDER BY seq LIMIT 128)
        AND at <= ?1
        """

    /// Pruning runs after every 64th slot (its number tells).
    static let pruneEvery: Int64 = 64

    /// The breaker's state (no row reads as closed; `saveBreaker` puts it back).
    static let breaker = "SELECT state FROM leetcode_breaker WHERE id = 1"

    /// The breaker's state (`LeetCodeBreaker.state`), its row put back if it was deleted.
    static let saveBreaker = """
        INSERT INTO leetcode_breaker (id, state) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET state = excluded.state
        """

    /// The caller's `maxLiveChallenges`-th newest live challenge's expiry: when one more is allowed again.
    static let challengeLimit = """
        SELECT expires_at FROM challenges WHERE user_id = ?1 AND expires_at > ?2
        ORDER BY expires_at DESC LIMIT 1 OFFSET ?3
        """

    /// `sql` with PostgreSQL's `$N` for SQLite's `?N` (these statements hold no other question mark).
    static func postgres(_ sql: String) -> String {
        String(sql.map { $0 == "?" ? "$" : $0 })
    }
}
