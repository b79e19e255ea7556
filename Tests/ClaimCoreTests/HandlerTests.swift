import Foundation
import Testing

@testable import ClaimCore

/// One invocation's output, parsed: what a caller and a log reader would see.
private struct Invocation {
    var outcome: Handler.Outcome
    var line: String { outcome.response.line }
    var response: JSON
    var log: JSON

    init(_ request: String, _ environment: [String: String]) throws {
        outcome = Handler.handle(input: Array(request.utf8), environment: { environment[$0] })
        let line = outcome.response.line
        #expect(line.hasSuffix("\n") && line.utf8.filter { $0 == UInt8(ascii: "\n") }.count == 1)
        response = try JSONParser.parse(Array(line.utf8))
        #expect(outcome.logLine().hasSuffix("\n") && outcome.logLine().utf8.filter { $0 == UInt8(ascii: "\n") }.count == 1)
        log = try JSONParser.parse(Array(outcome.logLine().utf8))
    }

    var status: JSON? { response["status"] }
    var result: JSON? { response["result"] }
    var errorCode: JSON? { response["error"]?["code"] }
    var exitCode: Int32 { outcome.response.exitCode }
}

/// Runs `body` with an environment whose database lives in a new temporary folder.
private func withEnvironment(_ body: ([String: String]) throws -> Void) throws {
    try withTemporaryFolder { folder in
        try body(["CLAIM_AUTH": "trusted", "CLAIM_VERIFY": "off", "CLAIM_DB": folder + "/db/claims.sqlite"])
    }
}

/// True when `text` is `YYYY-MM-DDTHH:MM:SS.mmmZ`.
private func isTimestamp(_ text: String?) -> Bool {
    guard let text else { return false }
    let shape = Array("0000-00-00T00:00:00.000Z".utf8)
    let bytes = Array(text.utf8)
    return bytes.count == shape.count
        && zip(bytes, shape).allSatisfy { b, s in s == UInt8(ascii: "0") ? (0x30...0x39).contains(b) : b == s }
}

@Suite struct HandlerTests {
    @Test func verifyStatusReleaseHappyPath() throws {
        try withEnvironment { env in
            let verify = try Invocation(
                #"{"action":"verify","username":" Alice ","user_id":"u-1","request_id":"r-1"}"#, env)
            #expect(verify.status == .number("200"))
            #expect(verify.exitCode == 0)
            #expect(verify.response["ok"] == .bool(true))
            #expect(verify.response["action"] == .string("verify"))
            #expect(verify.response["request_id"] == .string("r-1"))
            let claimedAt = try #require(verify.result?["claimed_at"]?.stringValue)
            #expect(isTimestamp(claimedAt))
            #expect(
                verify.result
                    == .object([
                        ("username", .string("alice")), ("claimed_by", .string("u-1")),
                        ("claimed_at", .string(claimedAt)), ("verified_via", .string("none")), ("profile", .null),
                    ]))

            let again = try Invocation(#"{"action":"verify","username":"alice","user_id":"u-1"}"#, env)
            #expect(again.result?["claimed_at"] == .string(claimedAt))
            #expect(again.response["request_id"] == .null)

            let status = try Invocation(#"{"action":"status","username":"ALICE","user_id":"u-1"}"#, env)
            #expect(status.status == .number("200"))
            #expect(
                status.result
                    == .object([
                        ("username", .string("alice")), ("claimed", .bool(true)), ("mine", .bool(true)),
                        ("claimed_at", .string(claimedAt)),
                    ]))

            let release = try Invocation(#"{"action":"release","username":"alice","user_id":"u-1"}"#, env)
            #expect(release.status == .number("200"))
            #expect(release.exitCode == 0)
            #expect(release.result == .object([("username", .string("alice")), ("released", .bool(true))]))

            let after = try Invocation(#"{"action":"status","username":"alice","user_id":"u-1"}"#, env)
            #expect(
                after.result
                    == .object([
                        ("username", .string("alice")), ("claimed", .bool(false)), ("mine", .bool(false)),
                        ("claimed_at", .null),
                    ]))
        }
    }

    @Test func statusOfAnotherUsersClaimNeverShowsTheirID() throws {
        try withEnvironment { env in
            let ownerID = "owner-7f3a9c-private"
            _ = try Invocation(#"{"action":"verify","username":"alice","user_id":"\#(ownerID)"}"#, env)
            let status = try Invocation(#"{"action":"status","username":"alice","user_id":"someone-else"}"#, env)
            #expect(status.result?["claimed"] == .bool(true))
            #expect(status.result?["mine"] == .bool(false))
            #expect(!status.line.contains(ownerID))
            #expect(!status.line.contains("7f3a9c"))
            #expect(!status.outcome.logLine().contains(ownerID))
        }
    }

    @Test func conflictsMapToTheirCodes() throws {
        try withEnvironment { env in
            _ = try Invocation(#"{"action":"verify","username":"alice","user_id":"u-1"}"#, env)
            let taken = try Invocation(#"{"action":"verify","username":"alice","user_id":"u-2"}"#, env)
            #expect(taken.status == .number("409"))
            #expect(taken.errorCode == .string("already_claimed"))
            #expect(taken.exitCode == 0)
            #expect(!taken.line.contains("u-1"))
            let other = try Invocation(#"{"action":"verify","username":"bob","user_id":"u-1"}"#, env)
            #expect(other.errorCode == .string("user_has_other_profile"))
            let notOwner = try Invocation(#"{"action":"release","username":"alice","user_id":"u-2"}"#, env)
            #expect(notOwner.status == .number("403"))
            #expect(notOwner.errorCode == .string("not_owner"))
            let notClaimed = try Invocation(#"{"action":"release","username":"bob","user_id":"u-2"}"#, env)
            #expect(notClaimed.status == .number("404"))
            #expect(notClaimed.errorCode == .string("not_claimed"))
        }
    }

    @Test(arguments: [
        #"{"action":"status","username":"alice"}"#, #"{"action":"status","username":"alice","user_id":"a b"}"#,
    ])
    func trustedModeWithoutAValidUserIDIsUnauthenticated(request: String) throws {
        try withEnvironment { env in
            let invocation = try Invocation(request, env)
            #expect(invocation.status == .number("401"))
            #expect(invocation.errorCode == .string("unauthenticated"))
            #expect(invocation.exitCode == 0)
        }
    }

    @Test func misconfiguredExits78() throws {
        let invocation = try Invocation(
            #"{"action":"status","username":"alice","user_id":"u-1","request_id":"r-9"}"#, ["CLAIM_VERIFY": "off"])
        #expect(invocation.status == .number("500"))
        #expect(invocation.errorCode == .string("misconfigured"))
        #expect(invocation.response["error"]?["message"] == .string("CLAIM_AUTH is not set"))
        #expect(invocation.exitCode == 78)
        #expect(invocation.response["action"] == .string("status"))
        #expect(invocation.response["request_id"] == .string("r-9"))
        #expect(invocation.log["level"] == .string("error"))
    }

    @Test(arguments: ["{", "", "[1]", #"{"action":"status","action":"verify"}"#])
    func invalidJSONIsStatus400Exit0(request: String) throws {
        let invocation = try Invocation(request, ["CLAIM_AUTH": "trusted", "CLAIM_VERIFY": "off"])
        #expect(invocation.status == .number("400"))
        #expect(invocation.errorCode == .string("invalid_json"))
        #expect(invocation.exitCode == 0)
        #expect(invocation.response["action"] == .null)
        #expect(invocation.log["outcome"] == .string("invalid_json"))
        #expect(invocation.log["level"] == .string("warn"))
    }

    @Test func notADatabaseIsStoreUnavailableExit70() throws {
        try withTemporaryFolder { folder in
            let path = folder + "/claims.sqlite"
            let garbage = String(repeating: "not a database, just text. ", count: 100)
            try garbage.write(toFile: path, atomically: false, encoding: .utf8)
            let env = ["CLAIM_AUTH": "trusted", "CLAIM_VERIFY": "off", "CLAIM_DB": path]
            let invocation = try Invocation(#"{"action":"status","username":"alice","user_id":"u-1"}"#, env)
            #expect(invocation.status == .number("500"))
            #expect(invocation.errorCode == .string("store_unavailable"))
            #expect(invocation.exitCode == 70)
            // The SQLite detail goes to the log only.
            #expect(invocation.log["detail"]?.stringValue?.contains("SQLite error") == true)
            #expect(!invocation.line.contains("SQLite error"))
        }
    }

    private static let logKeys = [
        "time", "level", "request_id", "action", "username", "outcome", "status", "duration_ms",
    ]

    @Test func logLineHasTheKeysAndNoRequestBody() throws {
        try withEnvironment { env in
            let request =
                #"{"action":"verify","username":"  Alice  ","user_id":"uid-secret-31337","#
                + #""token":"tok-secret-424242","request_id":"req-7"}"#
            let invocation = try Invocation(request, env)
            #expect(invocation.status == .number("200"))
            guard case .object(let members) = invocation.log else {
                Issue.record("log line is not an object: \(invocation.outcome.logLine())")
                return
            }
            #expect(members.map(\.0) == Self.logKeys)
            #expect(isTimestamp(invocation.log["time"]?.stringValue))
            #expect(invocation.log["level"] == .string("info"))
            #expect(invocation.log["request_id"] == .string("req-7"))
            #expect(invocation.log["action"] == .string("verify"))
            #expect(invocation.log["username"] == .string("alice"))
            #expect(invocation.log["outcome"] == .string("ok"))
            #expect(invocation.log["status"] == .number("200"))
            guard case .number(let duration) = invocation.log["duration_ms"] else {
                Issue.record("duration_ms is not a number")
                return
            }
            #expect((Double(duration) ?? -1) >= 0)
            let log = invocation.outcome.logLine()
            for secret in ["uid-secret-31337", "tok-secret-424242", "  Alice  ", "\"token\"", "user_id", request] {
                #expect(!log.contains(secret))
            }
        }
    }

    @Test func logLineOfARejectedRequestHasTheSameKeys() throws {
        try withEnvironment { env in
            let invocation = try Invocation(
                #"{"action":"release","username":"alice","user_id":"u-1","token":"tok-secret-9"}"#, env)
            #expect(invocation.errorCode == .string("not_claimed"))
            guard case .object(let members) = invocation.log else {
                Issue.record("log line is not an object")
                return
            }
            #expect(members.map(\.0) == Self.logKeys)
            #expect(invocation.log["outcome"] == .string("not_claimed"))
            #expect(invocation.log["level"] == .string("warn"))
            #expect(invocation.log["status"] == .number("404"))
            #expect(invocation.log["request_id"] == .null)
            #expect(!invocation.outcome.logLine().contains("tok-secret-9"))
        }
    }
}
