/// A profile's owner as stored.
public struct Claim: Sendable, Equatable {
    public var username: String
    public var claimedBy: String
    public var claimedAt: String
    public var verifiedVia: String
}

/// What the handler needs from a claim store. Two conformers: `SQLiteStore` (embedded, one host) and
/// `PostgresStore` (a server, many hosts); both decide a claim with one guarded upsert.
public protocol ClaimStore: AnyObject {
    /// Claims `username` for `userID`, or confirms the caller's existing claim (same `claimedAt`). With a
    /// LeetCode `profile`, the same transaction stores its snapshot and consumes the caller's challenge.
    /// - Throws: `already_claimed`, `user_has_other_profile`, or a store error.
    func claim(
        username: String, userID: String, verifiedVia: String, profile: LeetCodeProfile?, requestID: String?,
        nowMs: Int64
    ) throws(ClaimError) -> Claim

    /// Releases `username` if `userID` owns it.
    /// - Throws: `not_owner`, `not_claimed`, or a store error.
    func release(username: String, userID: String, requestID: String?, nowMs: Int64) throws(ClaimError)

    /// The current owner of `username`, or nil when it is free.
    func owner(of username: String) throws(ClaimError) -> Claim?

    /// The caller's live challenge for `username`, or a new one valid for `ttlSeconds` while the caller holds fewer
    /// than `maxLive` live challenges.
    /// - Throws: `already_claimed` / `user_has_other_profile` before creating anything, `rate_limited` at `maxLive`,
    ///   or a store error.
    func challenge(username: String, userID: String, prefix: String, ttlSeconds: Int, maxLive: Int, nowMs: Int64)
        throws(ClaimError) -> Challenge

    /// The caller's live challenge code for `username`, or nil (an expired one counts as none).
    func liveChallengeCode(username: String, userID: String, nowMs: Int64) throws(ClaimError) -> String?

    /// Read-only pre-check: throws the 409 a claim would meet; returns whether the caller already owns `username`.
    func refuseIfTaken(username: String, userID: String) throws(ClaimError) -> Bool

    /// Refreshes the owner's profile snapshot; nil when `userID` no longer owns `username`.
    func resync(username: String, userID: String, profile: LeetCodeProfile, requestID: String?, nowMs: Int64)
        throws(ClaimError) -> Claim?

    /// Readies a store kept from an earlier invocation for the next one (a long-running process: AWS Lambda): its
    /// waits end in time for `answerBy`, nothing of the earlier invocation is left open, and a connection the server
    /// closed meanwhile is replaced.
    /// - Throws: what opening the store throws, when a replacement connection cannot be had.
    func prepare(answerBy: Deadline?) throws(ClaimError)

    /// Takes a slot for one LeetCode request on behalf of `userID`, in a short write transaction before the request:
    /// a reservation that ages out with its window, never a pending claim.
    /// - Throws: `rate_limited`, `leetcode_rate_limited` or `leetcode_unavailable` (see `Limits.admit`), or a store
    ///   error; nothing is written then.
    func reserveLeetCodeRequest(userID: String, limits: Limits, nowMs: Int64) throws(ClaimError) -> LeetCodeSlot

    /// Applies LeetCode's answer to the shared breaker and appends `failure` as a `verify_failed` event, in one
    /// transaction; returns the pause in seconds when this answer paused LeetCode requests.
    @discardableResult
    func recordLeetCodeAnswer(
        _ answer: LeetCodeAnswer, slot: LeetCodeSlot, limits: Limits, failure: VerifyFailure?, nowMs: Int64
    ) throws(ClaimError) -> Int?
}

extension ClaimError {
    // The refusals every store answers, written once: both backends must answer byte-identical responses.
    static let alreadyClaimed = ClaimError(.alreadyClaimed, "this LeetCode profile is already claimed by another user")
    static let otherProfileHeld = ClaimError(
        .userHasOtherProfile, "you already own a different LeetCode profile; release it first")
    static let notClaimed = ClaimError(.notClaimed, "this LeetCode profile is not claimed by anyone")
    static let notOwner = ClaimError(.notOwner, "this LeetCode profile is claimed by another user")
}
