import Testing

@testable import ClaimCore

private let now: Int64 = 1_800_000_000_000
private let limits = Limits(
    maxLiveChallenges: 3, verifyPerHour: 10, leetcodePerMinute: 60, breakerFailures: 5, probeLeaseMs: 6000)
private let ordinary = LeetCodeSlot(probe: false, breakerWasClean: true)
private let probe = LeetCodeSlot(probe: true, breakerWasClean: false)

/// `limits.admit` given the breaker and each window's limit-th newest slot (nil: room).
private func admit(
    _ breaker: LeetCodeBreaker = LeetCodeBreaker(), caller: Int64? = nil, everyone: Int64? = nil, nowMs: Int64 = now
) throws(ClaimError) -> (slot: LeetCodeSlot, breaker: LeetCodeBreaker?) {
    try limits.admit(
        breaker: breaker, callersNth: caller.map(Clock.rfc3339(ms:)), everyonesNth: everyone.map(Clock.rfc3339(ms:)),
        nowMs: nowMs)
}

private func paused(until: Int64, _ cause: ClaimError.Code, probeUntil: Int64? = nil) -> LeetCodeBreaker {
    var breaker = LeetCodeBreaker()
    breaker.pausedUntil = until
    breaker.cause = cause
    breaker.probeUntil = probeUntil
    return breaker
}

/// Feeds `answers` to a breaker, one second apart, each from an ordinary request that took its slot while closed
/// (or the probe, after a pause); returns the pauses they caused.
private func replay(_ answers: [LeetCodeAnswer], failuresToOpen: Int = 5) -> (LeetCodeBreaker, [Int?]) {
    var breaker = LeetCodeBreaker()
    var pauses: [Int?] = []
    for (i, answer) in answers.enumerated() {
        let at = now + Int64(i) * 1000
        let slot = breaker.pausedUntil == nil ? ordinary : probe
        if breaker.pausedUntil != nil { breaker.pausedUntil = at - 1 }  // the pause is over: this is the probe
        let (next, pause) = breaker.after(answer, slot: slot, failuresToOpen: failuresToOpen, nowMs: at)
        breaker = next
        pauses.append(pause)
    }
    return (breaker, pauses)
}

@Suite struct LimitsTests {
    @Test func roomEverywhereTakesAnOrdinarySlot() throws {
        let (slot, write) = try admit()
        #expect(slot == ordinary)
        #expect(write == nil, "nothing but the slot is written")
    }

    @Test func callersHourFullIsRateLimitedUntilTheSlotAgesOut() throws {
        let error = try #require(throws: ClaimError.self) {
            try admit(caller: now - 3_599_500, nowMs: now)
        }
        #expect(error.code == .rateLimited && error.code.status == 429)
        #expect(error.retryAfterSeconds == 1)
        let older = try #require(throws: ClaimError.self) { try admit(caller: now - 1000, nowMs: now) }
        #expect(older.retryAfterSeconds == 3599)
    }

    @Test func aLimitThNewestSlotOutsideItsWindowLeavesRoom() throws {
        #expect(try admit(caller: now - 3_600_000, everyone: now - 60_000).slot == ordinary)
    }

    @Test func everyonesMinuteFullIsLeetCodeRateLimited() throws {
        let error = try #require(throws: ClaimError.self) { try admit(everyone: now - 100, nowMs: now) }
        #expect(error.code == .leetcodeRateLimited && error.code.status == 503)
        #expect(error.retryAfterSeconds == 60)
    }

    @Test func theCallersLimitAnswersFirstThenTheBreakerThenTheBudget() throws {
        let breaker = paused(until: now + 5000, .leetcodeUnavailable)
        let caller = try #require(throws: ClaimError.self) {
            try admit(breaker, caller: now, everyone: now, nowMs: now)
        }
        #expect(caller.code == .rateLimited)
        let paused = try #require(throws: ClaimError.self) {
            try admit(breaker, everyone: now, nowMs: now)
        }
        #expect(paused.code == .leetcodeUnavailable && paused.retryAfterSeconds == 5)
    }

    @Test(arguments: [ClaimError.Code.leetcodeRateLimited, .leetcodeUnavailable])
    func whilePausedEveryRequestIsRefusedWithTheCause(cause: ClaimError.Code) throws {
        let error = try #require(throws: ClaimError.self) {
            try admit(paused(until: now + 2001, cause), nowMs: now)
        }
        #expect(error.code == cause && error.retryAfterSeconds == 3)
    }

    @Test func afterThePauseOneRequestProbesAndTheOthersWait() throws {
        let breaker = paused(until: now - 1, .leetcodeRateLimited)
        let (slot, leased) = try admit(breaker, nowMs: now)
        #expect(slot == probe)
        #expect(leased?.probeUntil == now + 6000)
        let second = try #require(throws: ClaimError.self) {
            try admit(try #require(leased), nowMs: now + 10)
        }
        #expect(second.code == .leetcodeRateLimited && second.retryAfterSeconds == 1)
        // A probe killed mid-request: once its lease runs out the next request probes instead.
        let (again, _) = try admit(try #require(leased), nowMs: now + 6000)
        #expect(again == probe)
    }

    @Test func a429PausesForItsRetryAfter() {
        let (breaker, pause) = LeetCodeBreaker().after(
            .rateLimited(retryAfterSeconds: 3), slot: ordinary, failuresToOpen: 5, nowMs: now)
        #expect(pause == 3)
        #expect(breaker.pausedUntil == now + 3000 && breaker.cause == .leetcodeRateLimited)
    }

    @Test func cloudflareBlocksDoubleWhileTheyRepeatAndAnAnswerResetsThem() {
        let blocked = LeetCodeAnswer.blocked(retryAfterSeconds: 30)
        let (breaker, pauses) = replay(Array(repeating: blocked, count: 8) + [.answered, blocked])
        #expect(pauses == [30, 60, 120, 240, 480, 900, 900, 900, nil, 30])
        #expect(breaker.cause == .leetcodeUnavailable && breaker.blockPauseSeconds == 30)
    }

    @Test func aLongerRetryAfterOnABlockWins() {
        let (_, pause) = LeetCodeBreaker().after(
            .blocked(retryAfterSeconds: 120), slot: ordinary, failuresToOpen: 5, nowMs: now)
        #expect(pause == 120)
        let (_, capped) = LeetCodeBreaker().after(
            .blocked(retryAfterSeconds: 3600), slot: ordinary, failuresToOpen: 5, nowMs: now)
        #expect(capped == 900, "at most 15 min")
    }

    @Test func aRequestCutShortByTheDeadlineCountsForNothingAndFreesTheProbe() {
        let counting = replay([.failed, .cutShort, .failed], failuresToOpen: 2)
        #expect(counting.1 == [nil, nil, 30], "not an answer either: the row goes on")
        let (once, none) = replay(Array(repeating: .cutShort, count: 10), failuresToOpen: 1)
        #expect(once.isClean && none.allSatisfy { $0 == nil })
        let halfOpen = paused(until: now - 1, .leetcodeUnavailable, probeUntil: now + 5000)
        let (next, pause) = halfOpen.after(.cutShort, slot: probe, failuresToOpen: 5, nowMs: now)
        #expect(pause == nil && next.probeUntil == nil && next.pausedUntil == halfOpen.pausedUntil)
        let timeout = LeetCodeClient.claimError(for: HTTPFailure(.timeout, "after 750 ms"))
        #expect(LeetCodeAnswer(timeout, cutShortByDeadline: true) == .cutShort)
        #expect(LeetCodeAnswer(timeout) == .failed, "the configured timeout ran out: LeetCode is slow")
        let refused = LeetCodeClient.claimError(for: HTTPFailure(.connect, "refused"))
        #expect(LeetCodeAnswer(refused, cutShortByDeadline: true) == .failed)
    }

    @Test func failuresPauseOnlyWhenEnoughComeInARowWithinAMinute() {
        let (_, threeThenAnswer) = replay([.failed, .failed, .answered, .failed, .failed], failuresToOpen: 3)
        #expect(threeThenAnswer == [nil, nil, nil, nil, nil], "an answer breaks the row")
        let (breaker, three) = replay([.failed, .failed, .failed], failuresToOpen: 3)
        #expect(three == [nil, nil, 30])
        #expect(breaker.cause == .leetcodeUnavailable && breaker.failures == 0)
        var slow = LeetCodeBreaker()
        for i in 0..<3 {
            slow = slow.after(.failed, slot: ordinary, failuresToOpen: 3, nowMs: now + Int64(i) * 40_000).breaker
        }
        #expect(slow.pausedUntil == nil && slow.failures == 1, "the row started over a minute after its first")
    }

    @Test func aFailedProbePausesAgainAndAnAnsweredOneCloses() {
        let halfOpen = paused(until: now - 1, .leetcodeUnavailable, probeUntil: now + 5000)
        let (again, pause) = halfOpen.after(.failed, slot: probe, failuresToOpen: 5, nowMs: now)
        #expect(pause == 30 && again.pausedUntil == now + 30_000 && again.probeUntil == nil)
        let (closed, none) = halfOpen.after(.answered, slot: probe, failuresToOpen: 5, nowMs: now)
        #expect(none == nil && closed.isClean)
    }

    @Test func answersToRequestsSentBeforeThePauseOnlyLengthenIt() {
        let breaker = paused(until: now + 10_000, .leetcodeUnavailable)
        for answer in [LeetCodeAnswer.answered, .failed] {
            let (after, pause) = breaker.after(answer, slot: ordinary, failuresToOpen: 1, nowMs: now)
            #expect(after == breaker && pause == nil)
        }
        let (same, remaining) = breaker.after(
            .rateLimited(retryAfterSeconds: 3), slot: ordinary, failuresToOpen: 5, nowMs: now)
        #expect(same == breaker && remaining == 10)
        let (longer, pause) = breaker.after(
            .rateLimited(retryAfterSeconds: 60), slot: ordinary, failuresToOpen: 5, nowMs: now)
        #expect(pause == 60 && longer.pausedUntil == now + 60_000 && longer.cause == .leetcodeRateLimited)
        let (blocked, _) = breaker.after(
            .blocked(retryAfterSeconds: 30), slot: ordinary, failuresToOpen: 5, nowMs: now)
        #expect(blocked.blockPauseSeconds == 0, "no doubling from a request sent before the pause")
    }

    @Test func storedColumnsRoundTrip() {
        var breaker = paused(until: now + 1, .leetcodeRateLimited, probeUntil: now + 2)
        (breaker.failures, breaker.failuresSince, breaker.blockPauseSeconds) = (4, now - 3, 240)
        #expect(LeetCodeBreaker(state: breaker.state) == breaker)
        #expect(
            breaker.state == #"{"paused_until":"2027-01-15T08:00:00.001Z","cause":"leetcode_rate_limited","failures":4,"#
                + #""failures_since":"2027-01-15T07:59:59.997Z","block_pause_s":240,"probe_until":"2027-01-15T08:00:00.002Z"}"#)
        #expect(LeetCodeBreaker().state == "{}")
        #expect(LeetCodeBreaker(state: "{}").isClean)
        #expect(LeetCodeBreaker(state: nil).isClean, "a missing row reads as closed")
        for garbage in ["", "[]", "null", "{", #"{"paused_until":"soon","cause":"bogus","failures":"x"}"#] {
            #expect(LeetCodeBreaker(state: garbage).isClean, "\(garbage)")
        }
    }

    @Test func answersAreClassifiedFromTheClientsErrors() {
        let cloudflare = LeetCodeClient.claimError(
            for: HTTPResponse(status: 403, headers: [("cf-mitigated", "challenge")], body: Array("<html>".utf8)))
        #expect(LeetCodeAnswer(cloudflare) == .blocked(retryAfterSeconds: 30))
        let plain403 = LeetCodeClient.claimError(for: HTTPResponse(status: 403, headers: [], body: Array("no".utf8)))
        #expect(LeetCodeAnswer(plain403) == .failed)
        let limited = LeetCodeClient.claimError(
            for: HTTPResponse(status: 429, headers: [("retry-after", "3")], body: []))
        #expect(LeetCodeAnswer(limited) == .rateLimited(retryAfterSeconds: 3))
        #expect(
            LeetCodeAnswer(LeetCodeClient.claimError(for: HTTPResponse(status: 502, headers: [], body: []))) == .failed)
        #expect(LeetCodeAnswer(ClaimError(.codeNotFound, "m")) == .answered)
        #expect(LeetCodeAnswer(ClaimError(.leetcodeUserNotFound, "m")) == .answered)
        #expect(LeetCodeAnswer(ClaimError(.leetcodeBadResponse, "m")) == .answered)
        #expect(LeetCodeAnswer(ClaimError(.misconfigured, "m")) == nil)
    }

    @Test func challengeRefusalWaitsForTheOldestOfTheMaxToExpire() {
        let error = Limits.tooManyChallenges(3, oldestExpiry: Clock.rfc3339(ms: now + 899_001), nowMs: now)
        #expect(error.code == .rateLimited && error.retryAfterSeconds == 900)
        #expect(error.message.hasPrefix("you already hold 3 live challenges"))
    }

    @Test func postgresTextOnlySwapsThePlaceholders() {
        #expect(LimitsSQL.postgres(LimitsSQL.takeSlot) == "INSERT INTO leetcode_requests (at, user_id) VALUES ($1, $2)")
    }
}
