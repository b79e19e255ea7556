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

    /// The parameters of `LimitsSQL.callerCount`: the caller and the hour's start.
    func callerCountParameters(userID: String, nowMs: Int64) -> [String?] {
        [userID, Clock.rfc3339(ms: nowMs - Limits.hourMs)]
    }

    /// The parameters of `LimitsSQL.callerWindow`: the caller, the hour's start, the offset of its limit-th newest slot.
    func callerWindowParameters(userID: String, nowMs: Int64) -> [String?] {
        callerCountParameters(userID: userID, nowMs: nowMs) + [String(verifyPerHour - 1)]
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
