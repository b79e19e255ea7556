/// Settings read from the environment, validated before any request is served.
public struct Config: Sendable {
    public enum Auth: String, CaseIterable, Sendable { case trusted, jwt }
    public enum Verify: String, CaseIterable, Sendable { case off, leetcode }
    public enum Journal: String, CaseIterable, Sendable { case wal, delete }
    public enum Sync: String, CaseIterable, Sendable { case full, normal }

    public var databasePath: String
    /// Set when `CLAIM_DATABASE_URL` selects PostgreSQL instead of the SQLite file.
    public var databaseURL: PostgresURL?
    public var auth: Auth
    public var verify: Verify
    public var busyTimeoutMs: Int
    public var sync: Sync
    public var journal: Journal
    public var codePrefix: String
    public var challengeTTLSeconds: Int
    public var leetcodeURL: String
    public var leetcodeTimeoutMs: Int
    public var http: HTTPClient.Environment
    /// Set in `jwt` mode only.
    public var jwt: JWTVerifier?
    /// When this invocation's answer is due, for a runtime that gives each invocation a deadline (AWS Lambda's, less
    /// a margin); nil in function mode, where only the configured timeouts apply.
    var answerBy: Deadline?
    /// The abuse limits kept in the claim store.
    public var limits = Limits()

    /// Every environment variable the binary reads, with its default (nil = none). function.json must list
    /// exactly these; a test compares the two.
    public static let variables: [(name: String, defaultValue: String?)] = [
        ("CLAIM_DB", "./data/claims.sqlite"),
        ("CLAIM_DATABASE_URL", nil),
        ("CLAIM_AUTH", nil),
        ("CLAIM_VERIFY", "leetcode"),
        ("CLAIM_BUSY_TIMEOUT_MS", "3000"),
        ("CLAIM_SYNC", "full"),
        ("CLAIM_JOURNAL", "wal"),
        ("CLAIM_CODE_PREFIX", "LCC-"),
        ("CLAIM_CHALLENGE_TTL_S", "900"),
        ("CLAIM_MAX_LIVE_CHALLENGES", "3"),
        ("CLAIM_VERIFY_PER_HOUR", "10"),
        ("CLAIM_LEETCODE_PER_MINUTE", "60"),
        ("CLAIM_BREAKER_FAILURES", "5"),
        ("LEETCODE_GRAPHQL_URL", "https://leetcode.com/graphql"),
        ("LEETCODE_TIMEOUT_MS", "5000"),
        ("SSL_CERT_FILE", nil),
        ("SSL_CERT_DIR", nil),
        ("HTTPS_PROXY", nil),
        ("https_proxy", nil),
        ("NO_PROXY", nil),
        ("no_proxy", nil),
        ("CLAIM_JWT_SECRET", nil),
        ("CLAIM_JWT_AUDIENCE", "authenticated"),
        ("CLAIM_JWT_ISSUER", nil),
        ("CLAIM_JWT_LEEWAY_S", "30"),
        ("Http_Authorization", nil),
        ("FN_HTTP_H_AUTHORIZATION", nil),
        ("__OW_ACTION_NAME", nil),
        ("CLAIM_EXIT_CODES", "sysexits"),
        ("AWS_LAMBDA_RUNTIME_API", nil),
    ]

    /// Reads and validates the configuration.
    /// - Parameters:
    ///   - environment: looks a variable up; an empty value counts as unset.
    ///   - storageOnly: read only the database settings (for `migrate`, which serves no caller).
    /// - Throws: `misconfigured`, naming the variable.
    public static func load(_ environment: (String) -> String?, storageOnly: Bool = false) throws(ClaimError) -> Config
    {
        func value(_ name: String) -> String? {
            guard let v = environment(name), !v.isEmpty else {
                return variables.first { $0.name == name }?.defaultValue
            }
            return v
        }
        func choice<T: RawRepresentable<String> & CaseIterable>(_ name: String, _: T.Type) throws(ClaimError) -> T {
            guard let raw = value(name) else {
                throw ClaimError(.misconfigured, "\(name) is not set")
            }
            guard let v = T(rawValue: raw) else {
                let allowed = T.allCases.map(\.rawValue).joined(separator: ", ")
                throw ClaimError(.misconfigured, "\(name) must be one of: \(allowed)")
            }
            return v
        }
        func integer(_ name: String, _ range: ClosedRange<Int>) throws(ClaimError) -> Int {
            guard let text = value(name), let v = Int(text), range.contains(v) else {
                throw ClaimError(
                    .misconfigured, "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return v
        }
        let auth = storageOnly ? .trusted : try choice("CLAIM_AUTH", Auth.self)
        let verify = storageOnly ? .off : try choice("CLAIM_VERIFY", Verify.self)
        let sync = try choice("CLAIM_SYNC", Sync.self)
        let journal = try choice("CLAIM_JOURNAL", Journal.self)
        let timeout = try integer("CLAIM_BUSY_TIMEOUT_MS", 0...600_000)
        guard let path = value("CLAIM_DB") else { throw ClaimError(.misconfigured, "CLAIM_DB is not set") }
        var databaseURL: PostgresURL?
        if let url = environment("CLAIM_DATABASE_URL"), !url.isEmpty {
            // CLAIM_DB has a default, so only an explicit value conflicts: two stores would split the claims.
            if let file = environment("CLAIM_DB"), !file.isEmpty {
                throw ClaimError(
                    .misconfigured,
                    "CLAIM_DB and CLAIM_DATABASE_URL are both set: set CLAIM_DB for SQLite or CLAIM_DATABASE_URL "
                        + "for PostgreSQL, not both")
            }
            do throws(PostgresURL.Invalid) {
                databaseURL = try PostgresURL(url)
            } catch {
                throw ClaimError(.misconfigured, "CLAIM_DATABASE_URL is not a valid PostgreSQL URL: \(error.reason)")
            }
        }
        var config = Config(
            databasePath: path, databaseURL: databaseURL, auth: auth, verify: verify, busyTimeoutMs: timeout,
            sync: sync, journal: journal, codePrefix: "", challengeTTLSeconds: 0, leetcodeURL: "",
            leetcodeTimeoutMs: 0, http: HTTPClient.Environment(), jwt: nil)
        // Read for PostgreSQL's verify-ca / verify-full too, which `migrate` needs.
        config.http = HTTPClient.Environment(
            sslCertFile: value("SSL_CERT_FILE"), sslCertDir: value("SSL_CERT_DIR"),
            httpsProxy: value("HTTPS_PROXY") ?? value("https_proxy"), noProxy: value("NO_PROXY") ?? value("no_proxy"))
        if storageOnly { return config }

        let prefix = value("CLAIM_CODE_PREFIX") ?? ""
        guard (1...16).contains(prefix.utf8.count),
            prefix.utf8.allSatisfy({ (0x21...0x7E).contains($0) })
        else {
            throw ClaimError(.misconfigured, "CLAIM_CODE_PREFIX must be 1-16 printable ASCII characters without spaces")
        }
        config.codePrefix = prefix
        // main picks the exit code itself (`exitCodes`), also when loading fails; here a wrong value is reported.
        // Not through `choice`: each of its specializations instantiates type metadata, ~2k instructions a request.
        if exitCodes(environment) == nil {
            let allowed = ExitCodes.allCases.map(\.rawValue).joined(separator: ", ")
            throw ClaimError(.misconfigured, "CLAIM_EXIT_CODES must be one of: \(allowed)")
        }
        config.challengeTTLSeconds = try integer("CLAIM_CHALLENGE_TTL_S", 1...86_400)
        config.leetcodeURL = value("LEETCODE_GRAPHQL_URL") ?? LeetCodeClient.defaultURL
        config.leetcodeTimeoutMs = try integer("LEETCODE_TIMEOUT_MS", 100...60_000)
        config.limits = Limits(
            maxLiveChallenges: try integer("CLAIM_MAX_LIVE_CHALLENGES", 1...100),
            verifyPerHour: try integer("CLAIM_VERIFY_PER_HOUR", 1...10_000),
            leetcodePerMinute: try integer("CLAIM_LEETCODE_PER_MINUTE", 1...100_000),
            breakerFailures: try integer("CLAIM_BREAKER_FAILURES", 1...1000),
            probeLeaseMs: Int64(config.leetcodeTimeoutMs) + 1000)
        if verify == .leetcode {
            // Checked here, not at the first LeetCode call, so a bad setting fails every request alike.
            do throws(HTTPFailure) {
                _ = try HTTPClient.endpoint(config.leetcodeURL)
                if let proxy = config.http.httpsProxy { _ = try HTTPClient.proxyEndpoint(proxy) }
            } catch {
                throw LeetCodeClient.claimError(for: error)
            }
        }
        if auth == .jwt {
            guard let secret = value("CLAIM_JWT_SECRET") else {
                throw ClaimError(.misconfigured, "CLAIM_JWT_SECRET is not set (CLAIM_AUTH=jwt)")
            }
            config.jwt = try JWTVerifier(
                secret: Array(secret.utf8), audience: value("CLAIM_JWT_AUDIENCE") ?? "authenticated",
                issuer: value("CLAIM_JWT_ISSUER"), leewaySeconds: try integer("CLAIM_JWT_LEEWAY_S", 0...3600))
        }
        return config
    }
}

// What the runtime that started this process put in its environment: read on every request, before (and whether
// or not) the rest of the configuration loads.
extension Config {
    /// `CLAIM_EXIT_CODES`: `sysexits` (the exit code follows the status) or `zero` (exit 0 whenever the response
    /// was written), for runtimes that replace or decorate the body of a process that exits non-zero.
    public enum ExitCodes: String, CaseIterable, Sendable { case sysexits, zero }

    /// `CLAIM_EXIT_CODES`, or nil when it holds something else (`load` then answers `misconfigured`).
    public static func exitCodes(_ environment: (String) -> String?) -> ExitCodes? {
        guard let raw = environment("CLAIM_EXIT_CODES"), !raw.isEmpty else { return .sysexits }
        return ExitCodes(rawValue: raw)
    }

    /// Stdin mode's `RuntimeContext`: the Authorization header an OpenFaaS watchdog (`Http_Authorization`) or Fn's
    /// hotwrap (`FN_HTTP_H_AUTHORIZATION`) passed on, and whether OpenWhisk's action proxy started us (it sets
    /// `__OW_ACTION_NAME` for every run).
    public static func runtimeContext(_ environment: (String) -> String?) -> RuntimeContext {
        var context = RuntimeContext()
        if let header = environment("Http_Authorization"), !header.isEmpty { context.authorization.append(header) }
        if let header = environment("FN_HTTP_H_AUTHORIZATION"), !header.isEmpty { context.authorization.append(header) }
        if let name = environment("__OW_ACTION_NAME"), !name.isEmpty { context.openWhisk = true }
        return context
    }
}

// AWS Lambda: the binary is its own custom runtime when Lambda (or its emulator) names the Runtime API.
extension Config {
    /// `AWS_LAMBDA_RUNTIME_API` (`host:port` of the Runtime API), or nil outside Lambda.
    public static func lambdaRuntimeAPI(_ environment: (String) -> String?) -> String? {
        guard let api = environment("AWS_LAMBDA_RUNTIME_API"), !api.isEmpty else { return nil }
        return api
    }

    /// `load`, plus Lambda's storage rule: instances share no disk, so SQLite only when `CLAIM_DB` says so.
    /// - Throws: `misconfigured`, naming `CLAIM_DATABASE_URL` when neither store was chosen.
    public static func loadForLambda(_ environment: (String) -> String?) throws(ClaimError) -> Config {
        let config = try load(environment)
        if config.databaseURL == nil, environment("CLAIM_DB")?.isEmpty ?? true {
            throw ClaimError(
                .misconfigured,
                "CLAIM_DATABASE_URL is not set: on AWS Lambda the claims need PostgreSQL (instances share no disk); "
                    + "SQLite only with CLAIM_DB set explicitly and one instance (reserved concurrency 1)")
        }
        return config
    }

    /// `configured` milliseconds, or fewer when the invocation's answer is due sooner (`Deadline.capping`).
    func waitMs(_ configured: Int) -> Int {
        answerBy?.capping(configured) ?? configured
    }
}
