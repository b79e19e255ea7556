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

    /// The caller's live challenge for `username`, or a new one valid for `ttlSeconds`.
    /// - Throws: `already_claimed` / `user_has_other_profile` before creating anything, or a store error.
    func challenge(username: String, userID: String, prefix: String, ttlSeconds: Int, nowMs: Int64)
        throws(ClaimError) -> Challenge

    /// The caller's live challenge code for `username`, or nil (an expired one counts as none).
    func liveChallengeCode(username: String, userID: String, nowMs: Int64) throws(ClaimError) -> String?

    /// Read-only pre-check: throws the 409 a claim would meet; returns whether the caller already owns `username`.
    func refuseIfTaken(username: String, userID: String) throws(ClaimError) -> Bool

    /// Refreshes the owner's profile snapshot; nil when `userID` no longer owns `username`.
    func resync(username: String, userID: String, profile: LeetCodeProfile, requestID: String?, nowMs: Int64)
        throws(ClaimError) -> Claim?

    /// Appends an audit event (a failed verify changes nothing else).
    func audit(_ event: String, username: String, userID: String, requestID: String?, detail: String?, nowMs: Int64)
        throws(ClaimError)

    /// Readies a store kept from an earlier invocation for the next one (a long-running process: AWS Lambda): its
    /// waits end in time for `answerBy`, nothing of the earlier invocation is left open, and a connection the server
    /// closed meanwhile is replaced.
    /// - Throws: what opening the store throws, when a replacement connection cannot be had.
    func prepare(answerBy: Deadline?) throws(ClaimError)
}

extension ClaimError {
    // The refusals every store answers, written once: both backends must answer byte-identical responses.
    static let alreadyClaimed = ClaimError(.alreadyClaimed, "this LeetCode profile is already claimed by another user")
    static let otherProfileHeld = ClaimError(
        .userHasOtherProfile, "you already own a different LeetCode profile; release it first")
    static let notClaimed = ClaimError(.notClaimed, "this LeetCode profile is not claimed by anyone")
    static let notOwner = ClaimError(.notOwner, "this LeetCode profile is claimed by another user")
}
