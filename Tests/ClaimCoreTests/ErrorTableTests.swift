import Testing

@testable import ClaimCore

/// The contract's error table, written out by hand: wire name, status, exit code.
private let contract: [(name: String, status: Int, exit: Int32)] = [
    ("invalid_json", 400, 0),
    ("invalid_request", 400, 0),
    ("invalid_username", 400, 0),
    ("no_active_challenge", 400, 0),
    ("unauthenticated", 401, 0),
    ("not_owner", 403, 0),
    ("code_not_found", 403, 0),
    ("not_claimed", 404, 0),
    ("leetcode_user_not_found", 404, 0),
    ("already_claimed", 409, 0),
    ("user_has_other_profile", 409, 0),
    ("payload_too_large", 413, 0),
    ("rate_limited", 429, 0),
    ("not_implemented", 501, 70),
    ("leetcode_bad_response", 502, 70),
    ("store_busy", 503, 75),
    ("leetcode_rate_limited", 503, 75),
    ("leetcode_unavailable", 503, 75),
    ("store_unreachable", 503, 75),
    ("store_unavailable", 500, 70),
    ("misconfigured", 500, 78),
    ("internal", 500, 70),
]

@Suite struct ErrorTableTests {
    @Test func everyCodeIsInTheContractAndNoOther() {
        #expect(Set(ClaimError.Code.allCases.map(\.rawValue)) == Set(contract.map(\.name)))
        #expect(ClaimError.Code.allCases.count == contract.count)
    }

    @Test(arguments: [
        (ClaimError.Code.invalidJSON, "invalid_json"),
        (.invalidRequest, "invalid_request"),
        (.invalidUsername, "invalid_username"),
        (.noActiveChallenge, "no_active_challenge"),
        (.unauthenticated, "unauthenticated"),
        (.notOwner, "not_owner"),
        (.codeNotFound, "code_not_found"),
        (.notClaimed, "not_claimed"),
        (.leetcodeUserNotFound, "leetcode_user_not_found"),
        (.alreadyClaimed, "already_claimed"),
        (.userHasOtherProfile, "user_has_other_profile"),
        (.payloadTooLarge, "payload_too_large"),
        (.rateLimited, "rate_limited"),
        (.notImplemented, "not_implemented"),
        (.leetcodeBadResponse, "leetcode_bad_response"),
        (.storeBusy, "store_busy"),
        (.leetcodeRateLimited, "leetcode_rate_limited"),
        (.leetcodeUnavailable, "leetcode_unavailable"),
        (.storeUnreachable, "store_unreachable"),
        (.storeUnavailable, "store_unavailable"),
        (.misconfigured, "misconfigured"),
        (.internal, "internal"),
    ])
    func rawValueIsTheSnakeCaseName(code: ClaimError.Code, name: String) {
        #expect(code.rawValue == name)
    }

    @Test(arguments: ClaimError.Code.allCases)
    func statusAndExitCodeMatchTheContract(code: ClaimError.Code) throws {
        let row = try #require(contract.first { $0.name == code.rawValue })
        #expect(code.status == row.status)
        #expect(ExitCode.forResponse(status: code.status, code: code) == row.exit)
        let response = Response(action: .status, requestID: nil, outcome: .failure(ClaimError(code, "m")))
        #expect(response.status == row.status)
        #expect(response.exitCode == row.exit)
    }

    @Test(arguments: [(200, 0), (400, 0), (499, 0), (500, 70), (502, 70), (503, 75), (504, 70)] as [(Int, Int32)])
    func exitCodeByStatusWithoutACode(status: Int, exit: Int32) {
        #expect(ExitCode.forResponse(status: status, code: nil) == exit)
    }

    @Test func successIsStatus200AndExit0() {
        let response = Response(action: .verify, requestID: nil, outcome: .success(.object([])))
        #expect(response.status == 200)
        #expect(response.exitCode == 0)
    }
}

@Suite struct ResponseLineTests {
    /// The line parsed back, after checking it is exactly one line.
    private func parsedLine(_ response: Response) throws -> JSON {
        let line = response.line
        #expect(line.hasSuffix("\n"))
        #expect(line.utf8.filter { $0 == UInt8(ascii: "\n") }.count == 1)
        #expect(!line.contains("\r") && !line.contains("\u{2028}") && !line.contains("\u{2029}"))
        return try JSONParser.parse(Array(line.dropLast().utf8))
    }

    @Test func successLine() throws {
        let response = Response(
            action: .verify, requestID: "r-1", outcome: .success(.object([("username", .string("alice"))])))
        let value = try parsedLine(response)
        #expect(
            value
                == .object([
                    ("ok", .bool(true)), ("status", .number("200")), ("action", .string("verify")),
                    ("request_id", .string("r-1")), ("result", .object([("username", .string("alice"))])),
                ]))
    }

    @Test func failureLineWithoutRetryAfter() throws {
        let response = Response(action: nil, requestID: nil, outcome: .failure(ClaimError(.notOwner, "nope")))
        let value = try parsedLine(response)
        #expect(
            value
                == .object([
                    ("ok", .bool(false)), ("status", .number("403")), ("action", .null), ("request_id", .null),
                    ("error", .object([("code", .string("not_owner")), ("message", .string("nope"))])),
                ]))
        #expect(!response.line.contains("retry_after_s"))
    }

    @Test func failureLineWithRetryAfter() throws {
        let error = ClaimError(.storeBusy, "busy", retryAfterSeconds: 2, detail: "SQLite error 5")
        let value = try parsedLine(Response(action: .release, requestID: "r", outcome: .failure(error)))
        #expect(
            value["error"]
                == .object([
                    ("code", .string("store_busy")), ("message", .string("busy")), ("retry_after_s", .number("2")),
                ]))
        #expect(value["status"] == .number("503"))
    }

    @Test func detailNeverReachesTheLine() {
        let error = ClaimError(.storeUnavailable, "failed", detail: "SECRET-DETAIL in `SELECT`")
        let line = Response(action: .status, requestID: nil, outcome: .failure(error)).line
        #expect(!line.contains("SECRET-DETAIL"))
    }

    @Test func hostileTextStaysOnOneLine() throws {
        let nasty = "a\nb\r\nc\u{2028}d\u{2029}e\"f\\g\u{01}"
        let response = Response(
            action: .status, requestID: nasty, outcome: .failure(ClaimError(.invalidRequest, nasty)))
        let value = try parsedLine(response)
        #expect(value["request_id"] == .string(nasty))
        #expect(value["error"]?["message"] == .string(nasty))
    }
}
