/// The one error type: a stable code from the contract, a message safe to show the caller, and an underlying
/// detail for the log only.
public struct ClaimError: Error, CustomStringConvertible {
    /// Contract error codes. The raw values are public API: other programs branch on them.
    public enum Code: String, CaseIterable, Sendable {
        case invalidJSON = "invalid_json"
        case invalidRequest = "invalid_request"
        case invalidUsername = "invalid_username"
        case noActiveChallenge = "no_active_challenge"
        case unauthenticated = "unauthenticated"
        case notOwner = "not_owner"
        case codeNotFound = "code_not_found"
        case notClaimed = "not_claimed"
        case leetcodeUserNotFound = "leetcode_user_not_found"
        case alreadyClaimed = "already_claimed"
        case userHasOtherProfile = "user_has_other_profile"
        case payloadTooLarge = "payload_too_large"
        case rateLimited = "rate_limited"
        case notImplemented = "not_implemented"
        case leetcodeBadResponse = "leetcode_bad_response"
        case storeBusy = "store_busy"
        case leetcodeRateLimited = "leetcode_rate_limited"
        case leetcodeUnavailable = "leetcode_unavailable"
        case storeUnreachable = "store_unreachable"
        case storeUnavailable = "store_unavailable"
        case misconfigured = "misconfigured"
        case `internal` = "internal"

        /// The HTTP-like status, fixed per code.
        public var status: Int {
            switch self {
            case .invalidJSON, .invalidRequest, .invalidUsername, .noActiveChallenge: return 400
            case .unauthenticated: return 401
            case .notOwner, .codeNotFound: return 403
            case .notClaimed, .leetcodeUserNotFound: return 404
            case .alreadyClaimed, .userHasOtherProfile: return 409
            case .payloadTooLarge: return 413
            case .rateLimited: return 429
            case .notImplemented: return 501
            case .leetcodeBadResponse: return 502
            case .storeBusy, .leetcodeRateLimited, .leetcodeUnavailable, .storeUnreachable: return 503
            case .storeUnavailable, .misconfigured, .internal: return 500
            }
        }
    }

    public var code: Code
    /// Safe to show the caller: never a token, a secret, a bound SQL value or a stack trace.
    public var message: String
    /// Seconds the caller should wait before retrying; set on 503s and on `rate_limited` (429).
    public var retryAfterSeconds: Int?
    /// Extra context for the log line only (SQLite's message, the upstream's status, ...).
    public var detail: String?
    /// The backend's own error, for the one place that decides whether to retry (never shown to the caller).
    public var underlying: (any Error)?

    public init(
        _ code: Code, _ message: String, retryAfterSeconds: Int? = nil, detail: String? = nil,
        underlying: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
        self.detail = detail
        self.underlying = underlying
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// Process exit codes from sysexits.h, chosen by status in one place.
public enum ExitCode {
    /// 0 below 500, EX_TEMPFAIL (75) for 503, EX_CONFIG (78) for `misconfigured`, EX_SOFTWARE (70) for other 5xx.
    public static func forResponse(status: Int, code: ClaimError.Code?) -> Int32 {
        if code == .misconfigured { return 78 }
        if status == 503 { return 75 }
        if status >= 500 { return 70 }
        return 0
    }
}
