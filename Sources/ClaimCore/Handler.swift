/// Serves one request: the function `main` calls and the tests call, so the two cannot drift apart.
public enum Handler {
    /// What one invocation produces: the stdout line, the stderr log line and the exit code.
    public struct Outcome: Sendable {
        public var response: Response
        public var logLine: String
    }

    /// Decodes, authenticates and executes one request. Never throws: every failure becomes a response.
    /// - Parameters:
    ///   - input: stdin's bytes (the caller stops reading after `Request.maxBytes + 1`).
    ///   - environment: looks up an environment variable.
    public static func handle(input: [UInt8], environment: (String) -> String?) -> Outcome {
        let started = Clock.monotonicNs()
        var response = Response(action: nil, requestID: nil, outcome: .failure(ClaimError(.internal, "unreached")))
        var username: String?
        do throws(ClaimError) {
            let object = try Request.parseObject(input)
            (response.action, response.requestID) = Request.echo(from: object)
            let config = try Config.load(environment)
            let request = try Request(object)
            username = request.username
            let caller = try authenticate(request, config: config)
            response.outcome = .success(try execute(request, caller: caller, config: config))
        } catch {
            response.outcome = .failure(error)
        }
        let durationMs = Double(Clock.monotonicNs() - started) / 1_000_000
        return Outcome(response: response, logLine: Log.line(response: response, username: username, durationMs: durationMs))
    }

    /// The caller's user id.
    /// - Throws: `unauthenticated` when no valid identity was given.
    static func authenticate(_ request: Request, config: Config) throws(ClaimError) -> String {
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
            throw ClaimError(.notImplemented, "CLAIM_AUTH=jwt is not implemented yet")
        }
    }

    static func execute(_ request: Request, caller: String, config: Config) throws(ClaimError) -> JSON {
        switch request.action {
        case .challenge:
            throw ClaimError(.notImplemented, "the challenge action is not implemented yet")
        case .verify:
            guard config.verify == .off else {
                throw ClaimError(.notImplemented, "CLAIM_VERIFY=leetcode is not implemented yet")
            }
            let store = try SQLiteStore(config: config)
            let claim = try store.claim(
                username: request.username, userID: caller, verifiedVia: "none", requestID: request.requestID,
                nowMs: Clock.nowMs())
            return .object([
                ("username", .string(claim.username)),
                ("claimed_by", .string(claim.claimedBy)),
                ("claimed_at", .string(claim.claimedAt)),
                ("verified_via", .string(claim.verifiedVia)),
                ("profile", .null),
            ])
        case .release:
            let store = try SQLiteStore(config: config)
            try store.release(username: request.username, userID: caller, requestID: request.requestID, nowMs: Clock.nowMs())
            return .object([("username", .string(request.username)), ("released", .bool(true))])
        case .status:
            let store = try SQLiteStore(config: config)
            let claim = try store.owner(of: request.username)
            return .object([
                ("username", .string(request.username)),
                ("claimed", .bool(claim != nil)),
                ("mine", .bool(claim?.claimedBy == caller)),
                ("claimed_at", claim.map { .string($0.claimedAt) } ?? .null),
            ])
        }
    }
}

extension Handler {
    /// `leetcode-claim migrate`: creates or upgrades the database and sets its journal mode.
    public static func migrate(environment: (String) -> String?) -> (line: String, exitCode: Int32) {
        do throws(ClaimError) {
            let config = try Config.load(environment, storageOnly: true)
            _ = try SQLiteStore(config: config)
            let result: JSON = .object([
                ("ok", .bool(true)),
                ("database", .string(config.databasePath)),
                ("schema_version", .number(String(SQLiteStore.schemaVersion))),
                ("journal_mode", .string(config.journal.rawValue)),
            ])
            return (JSONWriter.serialize(result) + "\n", 0)
        } catch {
            let line = JSONWriter.serialize(.object([
                ("ok", .bool(false)), ("status", .number(String(error.code.status))),
                ("error", .object([("code", .string(error.code.rawValue)), ("message", .string(error.message))])),
            ]))
            return (line + "\n", ExitCode.forResponse(status: error.code.status, code: error.code))
        }
    }
}
