/// The circuit breaker every process shares in front of LeetCode: the one row of `leetcode_breaker`, and the
/// decisions taken on it, written once so that both stores decide alike.
///
/// Closed, requests flow. A 429 pauses them for its Retry-After (else 60 s); Cloudflare's 403 page for 30 s, doubling
/// while blocks repeat, at most 15 min; `CLAIM_BREAKER_FAILURES` timeouts, unreachable peers or 5xx in a row within a
/// minute for 30 s. While paused, a `verify` that needs LeetCode is refused with the cause's code. After the pause
/// the first request takes a lease and probes, the others are refused until its answer closes the breaker or pauses
/// it again, or until the lease runs out (a probe killed mid-request): then the next request probes instead.
struct LeetCodeBreaker: Equatable {
    /// Requests wait until then (ms since the epoch); nil when closed.
    var pausedUntil: Int64?
    /// What a refusal answers while paused: `leetcode_rate_limited` (a 429) or `leetcode_unavailable`.
    var cause: ClaimError.Code?
    /// Timeouts, unreachable peers and 5xx in a row, and when the first of them came.
    var failures = 0
    var failuresSince: Int64?
    /// The last Cloudflare pause in seconds: it doubles while blocks repeat, and an answer resets it.
    var blockPauseSeconds = 0
    /// After a pause, the probe's request is in flight until then.
    var probeUntil: Int64?

    /// Seconds of the first pause after Cloudflare's page, and of the longest one it doubles to.
    static let firstBlockPause = 30
    static let longestBlockPause = 900
    /// Seconds of the pause after failures in a row, and the minute they must come within.
    static let failurePause = 30
    static let failureWindowMs: Int64 = 60_000

    init() {}

    /// From the stored state, a JSON object with the fields that are not at their defaults: `paused_until`,
    /// `cause`, `failures`, `failures_since`, `block_pause_s`, `probe_until` (times in the store's RFC 3339 text).
    /// No row, or a state that does not read, reads as closed.
    init(state: String?) {
        guard let state, let json = try? JSONParser.parse(Array(state.utf8)), case .object = json else { return }
        func time(_ key: String) -> Int64? { json[key]?.stringValue.flatMap(Clock.ms(rfc3339:)) }
        func count(_ key: String) -> Int {
            if case .number(let text)? = json[key], let value = Int(text) { return value }
            return 0
        }
        pausedUntil = time("paused_until")
        cause = json["cause"]?.stringValue.flatMap(ClaimError.Code.init(rawValue:))
        failures = count("failures")
        failuresSince = time("failures_since")
        blockPauseSeconds = count("block_pause_s")
        probeUntil = time("probe_until")
    }

    /// The state `LimitsSQL.saveBreaker` stores: `{}` when closed and clean.
    var state: String {
        var fields: [(String, JSON)] = []
        func time(_ key: String, _ ms: Int64?) {
            if let ms { fields.append((key, .string(Clock.rfc3339(ms: ms)))) }
        }
        time("paused_until", pausedUntil)
        if let cause { fields.append(("cause", .string(cause.rawValue))) }
        if failures != 0 { fields.append(("failures", .number(String(failures)))) }
        time("failures_since", failuresSince)
        if blockPauseSeconds != 0 { fields.append(("block_pause_s", .number(String(blockPauseSeconds)))) }
        time("probe_until", probeUntil)
        return JSONWriter.serialize(.object(fields))
    }

    /// Closed with nothing counted: an ordinary answer changes nothing.
    var isClean: Bool { self == LeetCodeBreaker() }

    /// A request may go: the breaker is closed, or this request is the probe after a pause.
    enum Admission { case closed, probe }

    /// Whether a request may go now, and whether it is the probe after a pause.
    /// - Throws: the cause's code while paused, or while another process's probe is in flight.
    func admit(nowMs: Int64) throws(ClaimError) -> Admission {
        guard let until = pausedUntil else { return .closed }
        if until > nowMs {
            throw refusal(retryAfterSeconds: Limits.seconds(until: until, nowMs: nowMs), detail: "breaker paused")
        }
        // The probe's answer usually comes within a second; its lease is only the bound for a probe that died.
        if let lease = probeUntil, lease > nowMs {
            throw refusal(retryAfterSeconds: 1, detail: "breaker probing")
        }
        return .probe
    }

    private func refusal(retryAfterSeconds: Int, detail: String) -> ClaimError {
        if cause == .leetcodeRateLimited {
            return ClaimError(
                .leetcodeRateLimited, "LeetCode is rate-limiting this service; try again later.",
                retryAfterSeconds: retryAfterSeconds, detail: detail)
        }
        return ClaimError(
            .leetcodeUnavailable,
            "LeetCode is blocking or failing requests from this service, so they are paused; try again later.",
            retryAfterSeconds: retryAfterSeconds, detail: detail)
    }

    /// The breaker after LeetCode's `answer` to a request that took `slot`, and the pause in seconds when this answer
    /// paused requests (the failed request's own `retry_after_s`).
    func after(_ answer: LeetCodeAnswer, slot: LeetCodeSlot, failuresToOpen: Int, nowMs: Int64)
        -> (breaker: LeetCodeBreaker, pauseSeconds: Int?)
    {
        // An answer to a request sent before the current pause began tells nothing new: it may lengthen the pause,
        // never double it or end it.
        if let until = pausedUntil, until > nowMs, !slot.probe {
            let seconds: Int
            let cause: ClaimError.Code
            switch answer {
            case .rateLimited(let retryAfter): (seconds, cause) = (retryAfter, .leetcodeRateLimited)
            case .blocked(let retryAfter):
                (seconds, cause) = (
                    min(
                        max(retryAfter, blockPauseSeconds, LeetCodeBreaker.firstBlockPause),
                        LeetCodeBreaker.longestBlockPause),
                    .leetcodeUnavailable
                )
            case .answered, .failed, .cutShort: return (self, nil)
            }
            let end = nowMs + Int64(seconds) * 1000
            guard end > until else { return (self, Limits.seconds(until: until, nowMs: nowMs)) }
            var longer = self
            longer.pausedUntil = end
            longer.cause = cause
            return (longer, seconds)
        }
        switch answer {
        case .answered:
            return (LeetCodeBreaker(), nil)
        case .cutShort:
            // Nothing learnt about LeetCode; a probe that was cut short lets the next request probe at once.
            var next = self
            if slot.probe { next.probeUntil = nil }
            return (next, nil)
        case .rateLimited(let retryAfter):
            return (paused(retryAfter, cause: .leetcodeRateLimited, nowMs: nowMs), retryAfter)
        case .blocked(let retryAfter):
            var next = self
            next.blockPauseSeconds =
                blockPauseSeconds == 0
                ? LeetCodeBreaker.firstBlockPause : min(blockPauseSeconds * 2, LeetCodeBreaker.longestBlockPause)
            // A longer Retry-After wins, up to the longest pause.
            let seconds = min(max(next.blockPauseSeconds, retryAfter), LeetCodeBreaker.longestBlockPause)
            return (next.paused(seconds, cause: .leetcodeUnavailable, nowMs: nowMs), seconds)
        case .failed:
            var next = self
            if let since = failuresSince, nowMs - since < LeetCodeBreaker.failureWindowMs {
                next.failures += 1
            } else {
                (next.failures, next.failuresSince) = (1, nowMs)
            }
            // A failed probe pauses again at once: the pause before it already counted the failures.
            guard slot.probe || next.failures >= failuresToOpen else { return (next, nil) }
            let seconds = LeetCodeBreaker.failurePause
            return (next.paused(seconds, cause: .leetcodeUnavailable, nowMs: nowMs), seconds)
        }
    }

    private func paused(_ seconds: Int, cause: ClaimError.Code, nowMs: Int64) -> LeetCodeBreaker {
        var next = self
        next.pausedUntil = nowMs + Int64(seconds) * 1000
        next.cause = cause
        next.failures = 0
        next.failuresSince = nil
        next.probeUntil = nil
        return next
    }
}

/// What the outcome of one LeetCode request means for the breaker.
public enum LeetCodeAnswer: Sendable, Equatable {
    /// LeetCode answered: a profile, no such user, or a body this service could not read.
    case answered
    /// HTTP 429, with its Retry-After (else 60 s).
    case rateLimited(retryAfterSeconds: Int)
    /// Cloudflare's 403 page, with its Retry-After (else 30 s).
    case blocked(retryAfterSeconds: Int)
    /// A timeout, no connection, a 5xx or another unexpected status.
    case failed
    /// A timeout that came before LEETCODE_TIMEOUT_MS because this invocation's own deadline (AWS Lambda's) cut the
    /// request short: it says nothing about LeetCode, so it never counts towards a pause.
    case cutShort

    /// The answer behind a failed verify; nil when no request reached LeetCode because a setting is wrong.
    /// `cutShortByDeadline`: the request was given less time than LEETCODE_TIMEOUT_MS.
    init?(_ error: ClaimError, cutShortByDeadline: Bool = false) {
        if cutShortByDeadline && LeetCodeClient.isTimeout(error) {
            self = .cutShort
            return
        }
        switch error.code {
        case .leetcodeRateLimited:
            self = .rateLimited(retryAfterSeconds: error.retryAfterSeconds ?? LeetCodeClient.rateLimitedRetryAfter)
        case .leetcodeUnavailable:
            self =
                error.detail == LeetCodeClient.cloudflareDetail
                ? .blocked(retryAfterSeconds: error.retryAfterSeconds ?? LeetCodeClient.unavailableRetryAfter) : .failed
        case .misconfigured:
            return nil
        default:
            self = .answered
        }
    }
}
