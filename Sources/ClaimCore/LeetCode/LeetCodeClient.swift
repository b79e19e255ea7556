/// Fetches a public profile from LeetCode's GraphQL API in one request (shapes in shared/leetcode-api.md).
public enum LeetCodeClient {
    public static let defaultURL = "https://leetcode.com/graphql"
    /// Responses over this are `leetcode_bad_response`; a profile is a few KiB.
    public static let maxResponseBytes = 1024 * 1024
    /// The most JSON values an answer may hold: a profile is about 30, and every value the parser builds costs
    /// memory, so a megabyte of nested arrays beside a valid `data` is refused rather than built.
    public static let maxResponseValues = 4096
    /// Seconds a caller should wait after LeetCode was unreachable, blocked or failing.
    public static let unavailableRetryAfter = 30
    /// Seconds a caller should wait after a 429 without a usable Retry-After.
    public static let rateLimitedRetryAfter = 60

    static let query = """
        query userPublicProfile($username: String!) {
          matchedUser(username: $username) {
            username
            profile { realName aboutMe userAvatar ranking }
            submitStatsGlobal { acSubmissionNum { difficulty count } }
          }
        }
        """

    /// The profile of `username`, or the contract error for whatever went wrong upstream.
    /// - Throws: `ClaimError` with code `leetcodeUserNotFound`, `leetcodeRateLimited`, `leetcodeUnavailable`,
    ///   `leetcodeBadResponse`, or `misconfigured` (a bad LEETCODE_GRAPHQL_URL, HTTPS_PROXY or CA setting).
    public static func fetchProfile(
        username: String, url: String = defaultURL, timeoutMs: Int, version: String,
        environment: HTTPClient.Environment
    ) throws(ClaimError) -> LeetCodeProfile {
        let body = JSONWriter.serialize(
            .object([("query", .string(query)), ("variables", .object([("username", .string(username))]))]))
        let headers = [
            ("Content-Type", "application/json"), ("Accept", "application/json"),
            ("Referer", "https://leetcode.com"), ("Origin", "https://leetcode.com"),
            ("User-Agent", "leetcode-claim/\(version)"),
        ]
        let response: HTTPResponse
        do throws(HTTPFailure) {
            response = try HTTPClient.post(
                url: url, headers: headers, body: Array(body.utf8), timeoutMs: timeoutMs,
                maxResponseBytes: maxResponseBytes, environment: environment)
        } catch {
            throw claimError(for: error)
        }
        guard (200..<300).contains(response.status) else { throw claimError(for: response) }
        return try profile(from: response.body, username: username)
    }

    static func claimError(for failure: HTTPFailure) -> ClaimError {
        let detail = failure.description
        switch failure.kind {
        case .invalidURL:
            return ClaimError(
                .misconfigured, "LEETCODE_GRAPHQL_URL must be an https URL (plain http only to a loopback address).",
                detail: detail)
        case .invalidProxy:
            return ClaimError(.misconfigured, "HTTPS_PROXY must be an http://host:port URL.", detail: detail)
        case .tlsSetup:
            return ClaimError(
                .misconfigured, "The CA certificates (SSL_CERT_FILE / SSL_CERT_DIR) could not be loaded.",
                detail: detail)
        case .tooLarge, .malformed:
            return ClaimError(.leetcodeBadResponse, badResponseMessage, detail: detail)
        case .timeout:
            return ClaimError(
                .leetcodeUnavailable, "LeetCode did not answer in time; try again later.",
                retryAfterSeconds: unavailableRetryAfter, detail: detail)
        case .dns, .connect, .proxy, .tls, .reset:
            return ClaimError(
                .leetcodeUnavailable, "LeetCode could not be reached; try again later.",
                retryAfterSeconds: unavailableRetryAfter, detail: detail)
        }
    }

    /// Whether `error` is the timeout of the whole exchange (`claimError(for:)` keeps the failure's kind first in
    /// its detail).
    static func isTimeout(_ error: ClaimError) -> Bool {
        error.code == .leetcodeUnavailable && error.detail?.hasPrefix("\(HTTPFailure.Kind.timeout.rawValue):") == true
    }

    /// The log detail of a Cloudflare block, which the breaker pauses for longer while it repeats.
    static let cloudflareDetail = "cloudflare 403 challenge"

    static let badResponseMessage = "LeetCode sent a response this service does not understand; try again later."

    /// The error for a non-2xx answer: a block or a limit is never reported as a missing user.
    static func claimError(for response: HTTPResponse) -> ClaimError {
        let status = response.status
        let snippet = String(String(decoding: response.body.prefix(120), as: UTF8.self).map { $0.isNewline ? " " : $0 })
        if status == 429 {
            return ClaimError(
                .leetcodeRateLimited, "LeetCode is rate-limiting this service; try again later.",
                retryAfterSeconds: retryAfter(response, default: rateLimitedRetryAfter), detail: "HTTP 429")
        }
        let retry = retryAfter(response, default: unavailableRetryAfter)
        if status == 403 {
            let challenge =
                response.header("cf-mitigated") != nil || response.header("server")?.lowercased() == "cloudflare"
                || String(decoding: response.body.prefix(4096), as: UTF8.self).hasSubstring("Just a moment")
            let detail = challenge ? cloudflareDetail : "HTTP 403: \(snippet)"
            return ClaimError(
                .leetcodeUnavailable, "LeetCode refused the request (blocked by its bot protection); try again later.",
                retryAfterSeconds: retry, detail: detail)
        }
        let message =
            status >= 500
            ? "LeetCode is failing (HTTP \(status)); try again later."
            : "LeetCode answered with an unexpected HTTP \(status); try again later."
        return ClaimError(
            .leetcodeUnavailable, message, retryAfterSeconds: retry, detail: "HTTP \(status): \(snippet)")
    }

    /// Retry-After as delta-seconds, clamped to 1...3600; an HTTP-date or garbage gives `default`.
    static func retryAfter(_ response: HTTPResponse, default fallback: Int) -> Int {
        guard let value = response.header("retry-after"), !value.isEmpty, value.count <= 9,
            value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let seconds = Int(value)
        else { return fallback }
        return min(max(seconds, 1), 3600)
    }

    /// Parses a 2xx GraphQL body: strict about `username` and `aboutMe`, tolerant of extra or odd optional fields.
    static func profile(from body: [UInt8], username: String) throws(ClaimError) -> LeetCodeProfile {
        func bad(_ detail: String) -> ClaimError {
            ClaimError(.leetcodeBadResponse, badResponseMessage, detail: detail)
        }
        let json: JSON
        do throws(JSONParseError) {
            json = try JSONParser.parse(body, maxValues: maxResponseValues)
        } catch {
            throw bad("malformed JSON: \(error)")
        }
        guard case .object = json else { throw bad("body is a JSON \(json.typeName), not an object") }
        let user = json["data"]?["matchedUser"]
        if case .object = user {
            guard let name = user?["username"]?.stringValue else { throw bad("matchedUser.username is not a string") }
            // The answer must be about the user we asked for: another user's profile with the code in its About me
            // proves nothing about this one. LeetCode matches usernames case-insensitively; ASCII only, so that a
            // look-alike such as the Kelvin sign cannot fold into a letter.
            guard asciiLowercased(name) == asciiLowercased(username) else {
                throw bad("matchedUser.username \"\(name.prefix(80))\" is not the requested \"\(username)\"")
            }
            guard let profile = user?["profile"], case .object = profile else {
                throw bad("matchedUser.profile is not an object")
            }
            guard let aboutMe = profile["aboutMe"]?.stringValue else {
                throw bad("matchedUser.profile.aboutMe is not a string")
            }
            var solved: [String: Int] = [:]
            if case .array(let entries)? = user?["submitStatsGlobal"]?["acSubmissionNum"] {
                for entry in entries {
                    if let difficulty = entry["difficulty"]?.stringValue, let count = integer(entry["count"]) {
                        solved[difficulty] = count
                    }
                }
            }
            return LeetCodeProfile(
                username: name, realName: text(profile["realName"]), aboutMe: aboutMe,
                avatarURL: text(profile["userAvatar"]), ranking: integer(profile["ranking"]),
                solvedAll: solved["All"], solvedEasy: solved["Easy"], solvedMedium: solved["Medium"],
                solvedHard: solved["Hard"])
        }
        var messages: [String] = []
        if case .array(let errors)? = json["errors"] {
            messages = errors.map { $0["message"]?.stringValue ?? "?" }
        }
        // LeetCode answers 200 {"errors":[{"message":"That user does not exist."}],"data":{"matchedUser":null}}.
        // Any other GraphQL error means we learnt nothing about the user, so it must not read as "not found".
        let notFound = ClaimError(
            .leetcodeUserNotFound, "LeetCode has no user named \"\(username)\".", detail: "matchedUser is null")
        if messages.contains(where: { $0.lowercased().hasSubstring("does not exist") }) { throw notFound }
        if !messages.isEmpty { throw bad("GraphQL errors: \(messages.joined(separator: " | ").prefix(200))") }
        if user == .null { throw notFound }
        throw bad(user.map { "matchedUser is a \($0.typeName)" } ?? "no data.matchedUser")
    }

    private static func asciiLowercased(_ text: String) -> [UInt8] {
        text.utf8.map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 }
    }

    /// A count or rank as the snapshot stores it: 0...Int32.max (a PostgreSQL INTEGER), else unknown.
    private static func integer(_ value: JSON?) -> Int? {
        if case .number(let text)? = value, let v = Int(text), (0...Int(Int32.max)).contains(v) { return v }
        return nil
    }

    /// Display text for the snapshot, without NULs: PostgreSQL text cannot hold them, and SQLite would keep a
    /// different value than PostgreSQL does.
    private static func text(_ value: JSON?) -> String? {
        value?.stringValue.map { String($0.unicodeScalars.filter { $0 != "\u{0}" }) }
    }
}
