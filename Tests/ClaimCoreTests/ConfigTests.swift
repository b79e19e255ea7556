import Testing

@testable import ClaimCore

/// `Config.load` over a dictionary standing in for the process environment.
private func load(_ environment: [String: String], storageOnly: Bool = false) throws(ClaimError) -> Config {
    try Config.load({ environment[$0] }, storageOnly: storageOnly)
}

/// A secret long enough for `CLAIM_AUTH=jwt`.
private let jwtSecret = String(repeating: "s", count: JWTVerifier.minSecretBytes)

@Suite struct ConfigTests {
    @Test func defaults() throws {
        let config = try load(["CLAIM_AUTH": "trusted"])
        #expect(config.databasePath == "./data/claims.sqlite")
        #expect(config.auth == .trusted)
        #expect(config.verify == .leetcode)
        #expect(config.busyTimeoutMs == 3000)
        #expect(config.sync == .full)
        #expect(config.journal == .wal)
    }

    @Test func emptyValuesCountAsUnset() throws {
        let config = try load([
            "CLAIM_AUTH": "trusted", "CLAIM_DB": "", "CLAIM_VERIFY": "", "CLAIM_BUSY_TIMEOUT_MS": "", "CLAIM_SYNC": "",
            "CLAIM_JOURNAL": "",
        ])
        #expect(config.databasePath == "./data/claims.sqlite")
        #expect(config.verify == .leetcode)
        #expect(config.busyTimeoutMs == 3000)
        #expect(config.sync == .full)
        #expect(config.journal == .wal)
    }

    @Test func everyValueCanBeSet() throws {
        let config = try load([
            "CLAIM_AUTH": "jwt", "CLAIM_JWT_SECRET": jwtSecret, "CLAIM_DB": "/var/lib/claims/db.sqlite",
            "CLAIM_VERIFY": "off",
            "CLAIM_BUSY_TIMEOUT_MS": "250", "CLAIM_SYNC": "normal", "CLAIM_JOURNAL": "delete",
        ])
        #expect(config.auth == .jwt)
        #expect(config.databasePath == "/var/lib/claims/db.sqlite")
        #expect(config.verify == .off)
        #expect(config.busyTimeoutMs == 250)
        #expect(config.sync == .normal)
        #expect(config.journal == .delete)
    }

    @Test(arguments: ["0", "600000"])
    func busyTimeoutBoundsAreAccepted(value: String) throws {
        let config = try load(["CLAIM_AUTH": "trusted", "CLAIM_BUSY_TIMEOUT_MS": value])
        #expect(String(config.busyTimeoutMs) == value)
    }

    @Test(arguments: [[:], ["CLAIM_AUTH": ""]] as [[String: String]])
    func missingAuthIsMisconfigured(environment: [String: String]) throws {
        let error = try #require(throws: ClaimError.self) { _ = try load(environment) }
        #expect(error.code == .misconfigured)
        #expect(error.message == "CLAIM_AUTH is not set")
    }

    @Test(arguments: [
        ("CLAIM_AUTH", "bogus"),
        ("CLAIM_AUTH", "Trusted"),
        ("CLAIM_VERIFY", "maybe"),
        ("CLAIM_SYNC", "extra"),
        ("CLAIM_SYNC", "off"),
        ("CLAIM_JOURNAL", "memory"),
        ("CLAIM_JOURNAL", "truncate"),
        ("CLAIM_BUSY_TIMEOUT_MS", "abc"),
        ("CLAIM_BUSY_TIMEOUT_MS", "-1"),
        ("CLAIM_BUSY_TIMEOUT_MS", "600001"),
        ("CLAIM_BUSY_TIMEOUT_MS", "1.5"),
        ("CLAIM_BUSY_TIMEOUT_MS", "99999999999999999999999"),
        ("CLAIM_MAX_LIVE_CHALLENGES", "0"),
        ("CLAIM_MAX_LIVE_CHALLENGES", "101"),
        ("CLAIM_VERIFY_PER_HOUR", "0"),
        ("CLAIM_VERIFY_PER_HOUR", "10001"),
        ("CLAIM_LEETCODE_PER_MINUTE", "-1"),
        ("CLAIM_LEETCODE_PER_MINUTE", "100001"),
        ("CLAIM_BREAKER_FAILURES", "0"),
        ("CLAIM_BREAKER_FAILURES", "1001"),
        ("CLAIM_BREAKER_FAILURES", "5s"),
    ])
    func invalidValueIsMisconfiguredNamingTheVariable(name: String, value: String) throws {
        var environment = ["CLAIM_AUTH": "trusted"]
        environment[name] = value
        let error = try #require(throws: ClaimError.self) { _ = try load(environment) }
        #expect(error.code == .misconfigured)
        #expect(error.message.hasPrefix(name + " "))
        #expect(error.code.status == 500)
    }

    @Test func limitsDefaultsAndBounds() throws {
        #expect(
            try load(["CLAIM_AUTH": "trusted"]).limits
                == Limits(
                    maxLiveChallenges: 3, verifyPerHour: 10, leetcodePerMinute: 60, breakerFailures: 5,
                    probeLeaseMs: 6000
                ))
        let highest = try load([
            "CLAIM_AUTH": "trusted", "CLAIM_MAX_LIVE_CHALLENGES": "100", "CLAIM_VERIFY_PER_HOUR": "10000",
            "CLAIM_LEETCODE_PER_MINUTE": "100000", "CLAIM_BREAKER_FAILURES": "1000", "LEETCODE_TIMEOUT_MS": "100",
        ]).limits
        #expect(
            highest
                == Limits(
                    maxLiveChallenges: 100, verifyPerHour: 10000, leetcodePerMinute: 100_000, breakerFailures: 1000,
                    probeLeaseMs: 1100))
        let lowest = try load([
            "CLAIM_AUTH": "trusted", "CLAIM_MAX_LIVE_CHALLENGES": "1", "CLAIM_VERIFY_PER_HOUR": "1",
            "CLAIM_LEETCODE_PER_MINUTE": "1", "CLAIM_BREAKER_FAILURES": "1",
        ]).limits
        #expect(
            [lowest.maxLiveChallenges, lowest.verifyPerHour, lowest.leetcodePerMinute, lowest.breakerFailures] == [
                1, 1, 1, 1,
            ])
    }

    @Test(arguments: [[:], ["CLAIM_AUTH": "bogus", "CLAIM_VERIFY": "maybe"]] as [[String: String]])
    func storageOnlyIgnoresAuthAndVerify(environment: [String: String]) throws {
        var environment = environment
        environment["CLAIM_JOURNAL"] = "delete"
        let config = try load(environment, storageOnly: true)
        #expect(config.journal == .delete)
        #expect(config.databasePath == "./data/claims.sqlite")
    }

    @Test(arguments: [("CLAIM_SYNC", "extra"), ("CLAIM_JOURNAL", "memory"), ("CLAIM_BUSY_TIMEOUT_MS", "-1")])
    func storageOnlyStillChecksStorageSettings(name: String, value: String) throws {
        let error = try #require(throws: ClaimError.self) { _ = try load([name: value], storageOnly: true) }
        #expect(error.code == .misconfigured)
        #expect(error.message.hasPrefix(name + " "))
    }

    @Test func variablesAreExactlyTheNamesLoadAsksFor() throws {
        var asked = Set<String>()
        func recording(_ environment: [String: String]) -> (String) -> String? {
            { name in
                asked.insert(name)
                return environment[name]
            }
        }
        // Several configurations, so that every branch that reads a variable has run at least once.
        _ = try Config.load(recording(["CLAIM_AUTH": "trusted"]))
        _ = try Config.load(
            recording([
                "CLAIM_AUTH": "jwt", "CLAIM_JWT_SECRET": jwtSecret, "CLAIM_VERIFY": "off", "CLAIM_JOURNAL": "delete",
            ]))
        _ = try Config.load(recording([:]), storageOnly: true)
        // What main reads on every request besides `load`: the runtime's variables.
        _ = Config.runtimeContext(recording([:]))
        _ = Config.exitCodes(recording([:]))
        _ = Config.lambdaRuntimeAPI(recording([:]))
        #expect(asked == Set(Config.variables.map(\.name)))
        #expect(Config.variables.count == Set(Config.variables.map(\.name)).count)
    }

    @Test(
        arguments: [
            ("CLAIM_DB", "./data/claims.sqlite"), ("CLAIM_AUTH", nil), ("CLAIM_VERIFY", "leetcode"),
            ("CLAIM_BUSY_TIMEOUT_MS", "3000"), ("CLAIM_SYNC", "full"), ("CLAIM_JOURNAL", "wal"),
            ("CLAIM_MAX_LIVE_CHALLENGES", "3"), ("CLAIM_VERIFY_PER_HOUR", "10"), ("CLAIM_LEETCODE_PER_MINUTE", "60"),
            ("CLAIM_BREAKER_FAILURES", "5"),
        ] as [(String, String?)])
    func variablesListTheDocumentedDefaults(name: String, defaultValue: String?) throws {
        let variable = try #require(Config.variables.first { $0.name == name })
        #expect(variable.defaultValue == defaultValue)
    }
}
