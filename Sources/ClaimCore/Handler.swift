/// Serves one request: the function `main` calls and the tests call, so the two cannot drift apart.
public enum Handler {
    /// What one invocation produces: the response, and what the log line needs.
    public struct Outcome: Sendable {
        public var response: Response
        /// The request was an OpenWhisk web action's parameters: the result must carry our status and headers.
        public var openWhiskWebAction = false
        var username: String?
        var durationMs: Double

        /// What stdout carries: the response line, or the web-action result that wraps it.
        public var line: String {
            openWhiskWebAction ? OpenWhisk.webActionResult(response) : response.line
        }

        /// The stderr log line; `stdoutLost` when the response could not be written, `awsRequestID` on Lambda.
        public func logLine(stdoutLost: Bool = false, awsRequestID: String? = nil) -> String {
            Log.line(
                response: response, username: username, durationMs: durationMs, stdoutLost: stdoutLost,
                awsRequestID: awsRequestID)
        }
    }

    /// Decodes, authenticates and executes one request. Never throws: every failure becomes a response.
    /// - Parameters:
    ///   - input: the request body: stdin's bytes (the caller stops reading after `Request.maxBytes + 1`).
    ///   - context: what the runtime delivered besides the body (an Authorization header, OpenWhisk's fields).
    ///   - environment: looks up an environment variable.
    public static func handle(
        input: [UInt8], context: RuntimeContext = RuntimeContext(), environment: (String) -> String?
    ) -> Outcome {
        serve(input, context: context, config: { () throws(ClaimError) in try Config.load(environment) }) {
            (config) throws(ClaimError) in try openStore(config)
        }
    }

    /// `handle`'s steps in the contract's check order, with the configuration and the store supplied by the caller:
    /// loaded and opened for this request (stdin), or kept across invocations (`Session`). `config` runs after the
    /// JSON check, `store` only once the caller is known.
    static func serve(
        _ input: [UInt8], context: RuntimeContext, config loadConfig: () throws(ClaimError) -> Config,
        store: (Config) throws(ClaimError) -> any ClaimStore
    ) -> Outcome {
        let started = Clock.monotonicNs()
        var response = Response(action: nil, requestID: nil, outcome: .failure(ClaimError(.internal, "unreached")))
        var webAction = false
        var username: String?
        do throws(ClaimError) {
            let object = try Request.parseObject(input)
            (response.action, response.requestID) = Request.echo(from: object)
            webAction = context.openWhisk && OpenWhisk.isWebAction(object)
            let config = try loadConfig()
            let request = try Request(object, openWhisk: context.openWhisk)
            username = request.username
            let caller = try authenticate(request, context: context, config: config)
            response.outcome = .success(try execute(request, caller: caller, config: config, store: try store(config)))
        } catch {
            response.outcome = .failure(error)
        }
        let durationMs = Double(Clock.monotonicNs() - started) / 1_000_000
        return Outcome(
            response: response, openWhiskWebAction: webAction, username: username, durationMs: durationMs)
    }

    /// This build's version, sent to LeetCode in the User-Agent.
    public static let version = "0.1.0"

    /// The caller's user id.
    /// - Throws: `unauthenticated` when no valid identity was given, `invalid_request` for a contradictory one.
    static func authenticate(_ request: Request, context: RuntimeContext = RuntimeContext(), config: Config)
        throws(ClaimError) -> String
    {
        switch config.auth {
        case .trusted:
            guard let userID = request.userID else {
                throw ClaimError(.unauthenticated, "missing field \"user_id\" (CLAIM_AUTH=trusted)")
            }
            guard Request.isValidUserID(userID) else {
                throw ClaimError(.unauthenticated, "user_id must be 1-128 printable ASCII characters without spaces")
            }
            return userID
        case .jwt:
            guard request.userID == nil else {
                throw ClaimError(
                    .invalidRequest, "field \"user_id\" is not accepted with CLAIM_AUTH=jwt; the token is the identity")
            }
            // Every source must agree: the token field, the header the runtime passed on, a web action's header.
            var token = request.token
            func take(_ header: String) throws(ClaimError) {
                let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
                guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                    throw ClaimError(.unauthenticated, "the Authorization header is not a Bearer token")
                }
                let headerToken = String(parts[1])
                if let token, token != headerToken {
                    throw ClaimError(
                        .invalidRequest,
                        request.token != nil
                            ? "the token field and the Authorization header carry different tokens"
                            : "the runtime passed on Authorization headers with different tokens")
                }
                token = headerToken
            }
            for header in context.authorization { try take(header) }
            if let header = request.headerAuthorization { try take(header) }
            guard let token, let verifier = config.jwt else {
                throw ClaimError(
                    .unauthenticated, "missing token: send it in the token field or an Authorization header")
            }
            return try verifier.verify(token, now: Clock.nowMs() / 1000)
        }
    }

    static func execute(_ request: Request, caller: String, config: Config, store: any ClaimStore)
        throws(ClaimError) -> JSON
    {
        let username = request.username
        switch request.action {
        case .challenge:
            let challenge = try store.challenge(
                username: username, userID: caller, prefix: config.codePrefix, ttlSeconds: config.challengeTTLSeconds,
                maxLive: config.limits.maxLiveChallenges, nowMs: Clock.nowMs())
            return .object([
                ("username", .string(username)),
                ("code", .string(challenge.code)),
                ("expires_at", .string(challenge.expiresAt)),
                ("instructions", .string(Challenge.instructions)),
            ])
        case .verify:
            let (claim, profile) =
                config.verify == .off
                ? (
                    try store.claim(
                        username: username, userID: caller, verifiedVia: "none", profile: nil,
                        requestID: request.requestID,
                        nowMs: Clock.nowMs()), nil
                )
                : try verifyThroughLeetCode(request, caller: caller, config: config, store: store)
            return .object([
                ("username", .string(claim.username)),
                ("claimed_by", .string(claim.claimedBy)),
                ("claimed_at", .string(claim.claimedAt)),
                ("verified_via", .string(claim.verifiedVia)),
                ("profile", profile ?? .null),
            ])
        case .release:
            try store.release(username: username, userID: caller, requestID: request.requestID, nowMs: Clock.nowMs())
            return .object([("username", .string(username)), ("released", .bool(true))])
        case .status:
            let claim = try store.owner(of: username)
            return .object([
                ("username", .string(username)),
                ("claimed", .bool(claim != nil)),
                ("mine", .bool(claim?.claimedBy == caller)),
                ("claimed_at", claim.map { .string($0.claimedAt) } ?? .null),
            ])
        }
    }

    /// Verify, then claim: nothing but a request slot (which ages out) and an audit event is written before LeetCode
    /// has shown the code, so there is no pending state to get stuck; the guarded upsert alone decides a race.
    static func verifyThroughLeetCode(_ request: Request, caller: String, config: Config, store: any ClaimStore)
        throws(ClaimError) -> (Claim, JSON)
    {
        let username = request.username
        let ownsIt = try store.refuseIfTaken(username: username, userID: caller)
        let code = ownsIt ? nil : try store.liveChallengeCode(username: username, userID: caller, nowMs: Clock.nowMs())
        if !ownsIt && code == nil {
            throw ClaimError(
                .noActiveChallenge, "no live challenge for this profile; request one with the challenge action first")
        }
        // Only requests that would reach LeetCode take a slot; the answers above cost it nothing.
        let slot = try store.reserveLeetCodeRequest(userID: caller, limits: config.limits, nowMs: Clock.nowMs())
        let profile: LeetCodeProfile
        let timeoutMs = config.waitMs(config.leetcodeTimeoutMs)
        do throws(ClaimError) {
            profile = try LeetCodeClient.fetchProfile(
                username: username, url: config.leetcodeURL, timeoutMs: timeoutMs, version: version,
                environment: config.http)
            if let code, !profile.aboutMe.hasSubstring(code) {
                throw ClaimError(
                    .codeNotFound,
                    "the code \(code) was not found in the LeetCode profile's About me (Edit Profile -> Summary); "
                        + "save it there and verify again")
            }
        } catch {
            // An audit row records what LeetCode said about this claim, not an operator's broken setting.
            guard let answer = LeetCodeAnswer(error, cutShortByDeadline: timeoutMs < config.leetcodeTimeoutMs) else {
                throw error
            }
            let failure = VerifyFailure(
                username: username, userID: caller, requestID: request.requestID, code: error.code)
            // When this answer paused LeetCode requests for everyone, the caller waits as long.
            if let pause = try? store.recordLeetCodeAnswer(
                answer, slot: slot, limits: config.limits, failure: failure, nowMs: Clock.nowMs())
            {
                var paused = error
                paused.retryAfterSeconds = max(error.retryAfterSeconds ?? 0, pause)
                throw paused
            }
            throw error
        }
        if !slot.breakerWasClean {
            // LeetCode answered: this closes the breaker (or resets its count) for everyone.
            _ = try? store.recordLeetCodeAnswer(
                .answered, slot: slot, limits: config.limits, failure: nil, nowMs: Clock.nowMs())
        }
        let nowMs = Clock.nowMs()
        if ownsIt,
            let claim = try store.resync(
                username: username, userID: caller, profile: profile, requestID: request.requestID, nowMs: nowMs)
        {
            return (claim, snapshot(profile, syncedAt: nowMs))
        }
        guard code != nil else {
            // Released between the pre-check and now: ownership must be proven again.
            throw ClaimError(
                .noActiveChallenge, "no live challenge for this profile; request one with the challenge action first")
        }
        let claim = try store.claim(
            username: username, userID: caller, verifiedVia: "leetcode", profile: profile,
            requestID: request.requestID, nowMs: nowMs)
        return (claim, snapshot(profile, syncedAt: nowMs))
    }

    static func snapshot(_ p: LeetCodeProfile, syncedAt: Int64) -> JSON {
        func int(_ v: Int?) -> JSON { v.map { .number(String($0)) } ?? .null }
        return .object([
            ("real_name", p.realName.map { .string($0) } ?? .null),
            ("avatar_url", p.avatarURL.map { .string($0) } ?? .null),
            ("ranking", int(p.ranking)),
            (
                "solved",
                .object([
                    ("easy", int(p.solvedEasy)), ("medium", int(p.solvedMedium)), ("hard", int(p.solvedHard)),
                    ("all", int(p.solvedAll)),
                ])
            ),
            ("synced_at", .string(Clock.rfc3339(ms: syncedAt))),
        ])
    }
}

extension Handler {
    /// The one place that picks the store: PostgreSQL when CLAIM_DATABASE_URL is set, else the SQLite file.
    static func openStore(_ config: Config, prepareOnFirstUse: Bool = true) throws(ClaimError) -> any ClaimStore {
        if config.databaseURL != nil {
            return try PostgresStore(config: config, checkSchemaOnFirstUse: prepareOnFirstUse)
        }
        return try SQLiteStore(config: config, prepareOnFirstUse: prepareOnFirstUse)
    }

    /// `leetcode-claim migrate`: creates or upgrades the database (and sets SQLite's journal mode).
    public static func migrate(environment: (String) -> String?) -> (line: String, exitCode: Int32) {
        do throws(ClaimError) {
            let config = try Config.load(environment, storageOnly: true)
            _ = try openStore(config, prepareOnFirstUse: false)
            let result: JSON
            if let url = config.databaseURL {
                result = .object([
                    ("ok", .bool(true)),
                    ("database", .string(url.redacted)),
                    ("schema_version", .number(String(PostgresStore.schemaVersion))),
                ])
            } else {
                result = .object([
                    ("ok", .bool(true)),
                    ("database", .string(config.databasePath)),
                    ("schema_version", .number(String(SQLiteStore.schemaVersion))),
                    ("journal_mode", .string(config.journal.rawValue)),
                ])
            }
            return (JSONWriter.serialize(result) + "\n", 0)
        } catch {
            return commandFailure(error)
        }
    }

    /// `leetcode-claim scram-keys`: logs in with CLAIM_DATABASE_URL's password (SCRAM-SHA-256, its server proving
    /// it knows the password too), then again with the keys that login used and no password, SCRAM required, and
    /// only then prints the role's ClientKey and ServerKey as the URL parameters `scram_client_key` and
    /// `scram_server_key`, which log in without the password and without PBKDF2.
    public static func scramKeys(environment: (String) -> String?) -> (line: String, exitCode: Int32) {
        do throws(ClaimError) {
            let config = try Config.load(environment, storageOnly: true)
            guard var url = config.databaseURL, url.password != nil else {
                throw ClaimError(
                    .misconfigured,
                    "scram-keys derives the keys from the password in CLAIM_DATABASE_URL, which has none")
            }
            url.scramKeys = nil
            let cas = PostgresConnection.TrustedCAs(file: config.http.sslCertFile, directory: config.http.sslCertDir)
            let keys = try scramKeysOfALogin(url, cas: cas, busyTimeoutMs: config.busyTimeoutMs)
            // Printed only once they have logged in on their own: a pooler that holds the password itself (not the
            // role's SCRAM secret) picks a new salt at every login, and keys from one login fail the next.
            var keyed = url
            (keyed.password, keyed.scramKeys, keyed.requireAuth) = (nil, keys, [.scramSHA256])
            let again: PostgresConnection
            do throws(ClaimError) {
                again = try PostgresStore.connect(keyed, cas: cas, busyTimeoutMs: config.busyTimeoutMs, answerBy: nil)
            } catch  where isRefusedLogin(error) {
                throw ClaimError(
                    .misconfigured,
                    "the keys from this login did not log in again (\(error.detail ?? error.message)): a pooler "
                        + "whose auth_file holds the password picks a new salt at every login; derive the keys "
                        + "against PostgreSQL itself, or a pooler whose auth_file holds the role's SCRAM secret",
                    detail: error.detail)
            }
            guard again.scramKeys == keys else {
                throw ClaimError(.internal, "the second login did not use the keys", detail: "scram-keys")
            }
            let client = Base64.encode(keys.client)
            let server = Base64.encode(keys.server)
            let parameters =
                "scram_client_key=\(PostgresURL.encode(client))&scram_server_key=\(PostgresURL.encode(server))"
            let result = JSON.object([
                ("ok", .bool(true)),
                ("database", .string(url.redacted)),
                ("scram_client_key", .string(client)),
                ("scram_server_key", .string(server)),
                ("url_parameters", .string(parameters)),
            ])
            return (JSONWriter.serialize(result) + "\n", 0)
        } catch {
            return commandFailure(error)
        }
    }

    /// The keys of one login with the password; its connection is closed on return, before the next login (a role
    /// or pooler may allow one connection at a time).
    private static func scramKeysOfALogin(_ url: PostgresURL, cas: PostgresConnection.TrustedCAs, busyTimeoutMs: Int)
        throws(ClaimError) -> SCRAMSHA256.Keys
    {
        let connection = try PostgresStore.connect(url, cas: cas, busyTimeoutMs: busyTimeoutMs, answerBy: nil)
        guard let keys = connection.scramKeys else {
            throw ClaimError(
                .misconfigured,
                "the server or pooler logged us in without SCRAM-SHA-256, so there are no SCRAM keys (its pg_hba "
                    + "method or auth_type, or a password not stored as SCRAM: password_encryption = scram-sha-256)")
        }
        return keys
    }

    /// A login the server or pooler refused, or one that require_auth refused: not a network or server outage.
    private static func isRefusedLogin(_ error: ClaimError) -> Bool {
        guard let failure = (error.underlying as? PostgresError)?.failure else { return false }
        return failure == .loginRefused || failure == .serverNotTrusted
    }

    /// A command's failure line, as `migrate` and `scram-keys` print it.
    private static func commandFailure(_ error: ClaimError) -> (line: String, exitCode: Int32) {
        let line = JSONWriter.serialize(
            .object([
                ("ok", .bool(false)), ("status", .number(String(error.code.status))),
                ("error", .object([("code", .string(error.code.rawValue)), ("message", .string(error.message))])),
            ]))
        return (line + "\n", ExitCode.forResponse(status: error.code.status, code: error.code))
    }
}
