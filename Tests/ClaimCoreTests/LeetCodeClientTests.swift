import Foundation
import Testing

@testable import ClaimCore

/// `LeetCodeClient.fetchProfile` against the fake server (Tests/fake_leetcode/server.py).
func fetch(
    _ username: String, from url: String, timeoutMs: Int = 5000, environment: HTTPClient.Environment
) throws(ClaimError) -> LeetCodeProfile {
    try LeetCodeClient.fetchProfile(
        username: username, url: url, timeoutMs: timeoutMs, version: "0.0.0-test", environment: environment)
}

@Suite struct LeetCodeClientTests {
    static var alice: [String: Any] {
        [
            "realName": "Alice Liddell", "aboutMe": "Hi!\nLCC-8f3a2b1c ✓", "userAvatar": "https://assets.example/a.png",
            "ranking": 630800, "easy": 10, "medium": 20, "hard": 3, "all": 33,
        ]
    }

    @Test func userWithContent() throws {
        let fake = try FakeLeetCode(profiles: ["Alice": Self.alice])
        defer { fake.stop() }
        let profile = try fetch("alice", from: fake.httpsURL, environment: fake.environment)
        #expect(
            profile
                == LeetCodeProfile(
                    username: "Alice", realName: "Alice Liddell", aboutMe: "Hi!\nLCC-8f3a2b1c ✓",
                    avatarURL: "https://assets.example/a.png", ranking: 630800, solvedAll: 33, solvedEasy: 10,
                    solvedMedium: 20, solvedHard: 3))
    }

    @Test func profilesFileIsReadOnEveryRequestAndEmptyAboutMeIsEmpty() throws {
        let fake = try FakeLeetCode(profiles: ["bob": [:]])
        defer { fake.stop() }
        #expect(try fetch("bob", from: fake.httpsURL, environment: fake.environment).aboutMe == "")
        try fake.setProfiles(["bob": ["aboutMe": "now with LCC-1"], "chunked": ["aboutMe": "in pieces"]])
        #expect(try fetch("bob", from: fake.httpsURL, environment: fake.environment).aboutMe == "now with LCC-1")
        #expect(try fetch("chunked", from: fake.httpsURL, environment: fake.environment).aboutMe == "in pieces")
    }

    @Test func plainHTTPToLoopback() throws {
        let fake = try FakeLeetCode(profiles: ["alice": Self.alice])
        defer { fake.stop() }
        #expect(try fetch("alice", from: fake.httpURL, environment: .init()).ranking == 630800)
    }

    /// What each upstream behaviour becomes: code, retry-after, and a word the log detail must contain.
    @Test(
        arguments: [
            ("nobody-here", ClaimError.Code.leetcodeUserNotFound, nil, "null"),
            ("cf-blocked", .leetcodeUnavailable, 30, "cloudflare"),
            ("rate-limited", .leetcodeRateLimited, 17, "429"),
            ("server-error", .leetcodeUnavailable, 30, "HTTP 500"),
            ("huge", .leetcodeBadResponse, nil, "too_large"),
            ("huge-chunked", .leetcodeBadResponse, nil, "too_large"),
            ("malformed", .leetcodeBadResponse, nil, "malformed JSON"),
            ("wrong-shape", .leetcodeBadResponse, nil, "matchedUser is a string"),
        ] as [(String, ClaimError.Code, Int?, String)])
    func upstreamOutcomes(username: String, code: ClaimError.Code, retryAfter: Int?, detail: String) throws {
        let fake = try FakeLeetCode()
        defer { fake.stop() }
        let error = #expect(throws: ClaimError.self) {
            _ = try fetch(username, from: fake.httpsURL, environment: fake.environment)
        }
        #expect(error?.code == code)
        #expect(error?.retryAfterSeconds == retryAfter)
        #expect(error?.detail?.contains(detail) == true, "\(String(describing: error?.detail))")
        if code != .leetcodeUserNotFound {
            #expect(error?.message.lowercased().contains("not found") == false)
            #expect(error?.message.lowercased().contains("no user") == false)
        }
    }

    @Test func notFoundNamesTheUser() throws {
        let fake = try FakeLeetCode()
        defer { fake.stop() }
        let error = #expect(throws: ClaimError.self) {
            _ = try fetch("ghost", from: fake.httpsURL, environment: fake.environment)
        }
        #expect(error?.code.status == 404)
        #expect(error?.message == "LeetCode has no user named \"ghost\".")
    }

    @Test func slowUpstreamTimesOut() throws {
        let fake = try FakeLeetCode(slowSeconds: 5)
        defer { fake.stop() }
        let start = ContinuousClock.now
        let error = #expect(throws: ClaimError.self) {
            _ = try fetch("slow", from: fake.httpsURL, timeoutMs: 300, environment: fake.environment)
        }
        #expect(ContinuousClock.now - start < .seconds(4), "returned before the server's 5 s answer")
        #expect(error?.code == .leetcodeUnavailable)
        #expect(error?.retryAfterSeconds == 30)
        #expect(error?.detail?.hasPrefix("timeout") == true)
    }

    @Test func tlsFailuresAreUnavailable() throws {
        let fake = try FakeLeetCode()
        defer { fake.stop() }
        for url in [fake.untrustedURL, fake.wrongHostURL] {
            let error = #expect(throws: ClaimError.self) {
                _ = try fetch("a", from: url, environment: fake.environment)
            }
            #expect(error?.code == .leetcodeUnavailable)
            #expect(error?.detail?.hasPrefix("tls:") == true, "\(String(describing: error?.detail))")
        }
    }

    @Test func connectionRefusedIsUnavailable() {
        let error = #expect(throws: ClaimError.self) {
            _ = try fetch("a", from: "https://127.0.0.1:\(closedPort())/graphql", environment: .init())
        }
        #expect(error?.code == .leetcodeUnavailable)
        #expect(error?.retryAfterSeconds == 30)
        #expect(error?.detail?.contains("Connection refused") == true)
    }

    @Test(arguments: ["http://leetcode.com/graphql", "leetcode.com/graphql", "https://leet code.com/"])
    func badURLIsMisconfigured(url: String) {
        let error = #expect(throws: ClaimError.self) { _ = try fetch("a", from: url, environment: .init()) }
        #expect(error?.code == .misconfigured)
        #expect(error?.message.contains("LEETCODE_GRAPHQL_URL") == true)
    }

    @Test func badProxyIsMisconfigured() {
        let error = #expect(throws: ClaimError.self) {
            _ = try fetch("a", from: LeetCodeClient.defaultURL, environment: .init(httpsProxy: "https://proxy:3128"))
        }
        #expect(error?.code == .misconfigured)
        #expect(error?.message.contains("HTTPS_PROXY") == true)
    }

    @Test func requestIsWhatLeetCodeExpects() throws {
        let fake = try FakeLeetCode()
        defer { fake.stop() }
        for field in [
            "matchedUser(username: $username)", "aboutMe", "realName", "userAvatar", "ranking",
            "acSubmissionNum { difficulty count }", "$username: String!",
        ] {
            #expect(LeetCodeClient.query.contains(field), "query lacks \(field)")
        }
        // Quotes in the username travel as a JSON variable, never spliced into the query.
        let error = #expect(throws: ClaimError.self) {
            _ = try fetch("a\"b", from: fake.httpsURL, environment: fake.environment)
        }
        #expect(error?.code == .leetcodeUserNotFound)
        let log = try String(contentsOf: fake.directory.appendingPathComponent("server.log"), encoding: .utf8)
        #expect(
            log.contains(
                #"graphql username='a"b' user-agent='leetcode-claim/0.0.0-test' origin='https://leetcode.com'"#))
    }
}

@Suite struct LeetCodeResponseParsingTests {
    func parse(_ text: String) throws(ClaimError) -> LeetCodeProfile {
        try LeetCodeClient.profile(from: Array(text.utf8), username: "x")
    }

    @Test func toleratesExtraFieldsAndMissingOptionalOnes() throws {
        let profile = try parse(
            #"{"data":{"matchedUser":{"username":"x","extra":[1],"profile":{"aboutMe":"hi","realName":null,"#
                + #""ranking":"1,234","more":{}},"submitStatsGlobal":{"acSubmissionNum":[{"difficulty":"Easy","#
                + #""count":4},{"difficulty":"Weird","count":1},{"count":2}]}}},"extensions":{}}"#)
        #expect(profile == LeetCodeProfile(username: "x", aboutMe: "hi", solvedEasy: 4))
    }

    @Test(arguments: [
        (#"{"data":{"matchedUser":null}}"#, ClaimError.Code.leetcodeUserNotFound),
        (#"{"errors":[{"message":"That user does not exist."}],"data":{"matchedUser":null}}"#, .leetcodeUserNotFound),
        (#"{"errors":[{"message":"That user does not exist."}],"data":null}"#, .leetcodeUserNotFound),
        (#"{"errors":[{"message":"That user does not exist."}]}"#, .leetcodeUserNotFound),
        // Another GraphQL error says nothing about the user: never "not found".
        (#"{"errors":[{"message":"Internal error"}],"data":{"matchedUser":null}}"#, .leetcodeBadResponse),
        (#"{"errors":[],"data":{}}"#, .leetcodeBadResponse),
        (#"{"data":{"matchedUser":{"username":"x","profile":{"aboutMe":null}}}}"#, .leetcodeBadResponse),
        (#"{"data":{"matchedUser":{"username":"x","profile":{}}}}"#, .leetcodeBadResponse),
        (#"{"data":{"matchedUser":{"username":"x"}}}"#, .leetcodeBadResponse),
        (#"{"data":{"matchedUser":{"profile":{"aboutMe":""}}}}"#, .leetcodeBadResponse),
        (#"{"data":{"matchedUser":[]}}"#, .leetcodeBadResponse),
        (#"{"data":"x"}"#, .leetcodeBadResponse),
        (#"[]"#, .leetcodeBadResponse),
        (#""#, .leetcodeBadResponse),
        (#"<!DOCTYPE html>"#, .leetcodeBadResponse),
    ])
    func outcomes(text: String, code: ClaimError.Code) {
        let error = #expect(throws: ClaimError.self) { _ = try parse(text) }
        #expect(error?.code == code, "\(String(describing: error))")
    }

    /// Another user's profile with the code in its About me proves nothing: the name must be the requested one,
    /// compared as LeetCode does (case-insensitively), and only in ASCII (the Kelvin sign is not a k).
    @Test(arguments: [
        ("kate", true), ("Kate", true), ("KATE", true), ("kate2", false), ("kat", false), ("\u{212A}ate", false),
        ("kate ", false), ("", false),
    ])
    func answeredUsernameMustBeTheRequestedOne(answered: String, accepted: Bool) throws {
        let text = JSONWriter.serialize(
            .object([
                (
                    "data",
                    .object([
                        (
                            "matchedUser",
                            .object([
                                ("username", .string(answered)), ("profile", .object([("aboutMe", .string("LCC-X"))])),
                            ])
                        )
                    ])
                )
            ]))
        let parsed = Result { () throws(ClaimError) in try LeetCodeClient.profile(from: Array(text.utf8), username: "kate") }
        switch parsed {
        case .success(let profile):
            #expect(accepted, "\(answered) must be refused")
            #expect(profile.aboutMe == "LCC-X")
        case .failure(let error):
            #expect(!accepted, "\(answered) must be accepted")
            #expect(error.code == .leetcodeBadResponse)
        }
    }

    /// A megabyte of nested arrays beside a valid `data` is refused before the parser builds it.
    @Test func answerWithTooManyValuesIsABadResponse() throws {
        let valid = #"{"username":"x","profile":{"aboutMe":"hi"}}"#
        let junk = String(repeating: "[[[[[[[[]]]]]]]],", count: 8000) + "1"
        let text = #"{"data":{"matchedUser":"# + valid + #"},"junk":["# + junk + "]}"
        #expect(text.utf8.count > 128 * 1024)
        let error = #expect(throws: ClaimError.self) { _ = try parse(text) }
        #expect(error?.code == .leetcodeBadResponse)
        #expect(error?.detail?.contains("more than \(LeetCodeClient.maxResponseValues) values") == true)
        #expect(try parse(#"{"data":{"matchedUser":"# + valid + "}}").aboutMe == "hi")
    }

    @Test(
        arguments: [
            ("17", 17), (nil, 60), ("", 60), ("Wed, 21 Oct 2015 07:28:00 GMT", 60), ("0", 1), ("999999", 3600),
            ("-5", 60), ("1.5", 60), ("99999999999999999999", 60),
        ] as [(String?, Int)])
    func retryAfter(header: String?, expected: Int) {
        let response = HTTPResponse(status: 429, headers: header.map { [("retry-after", $0)] } ?? [], body: [])
        #expect(LeetCodeClient.retryAfter(response, default: 60) == expected)
        #expect(LeetCodeClient.claimError(for: response).retryAfterSeconds == expected)
    }

    @Test(
        arguments: [
            (503, [("retry-after", "120")], ClaimError.Code.leetcodeUnavailable, 120),
            (502, [], .leetcodeUnavailable, 30),
            (404, [], .leetcodeUnavailable, 30),
            (301, [("location", "https://leetcode.com/graphql/")], .leetcodeUnavailable, 30),
            (403, [], .leetcodeUnavailable, 30),
        ] as [(Int, [(String, String)], ClaimError.Code, Int)])
    func nonSuccessStatuses(status: Int, headers: [(String, String)], code: ClaimError.Code, retry: Int) {
        let error = LeetCodeClient.claimError(for: HTTPResponse(status: status, headers: headers, body: []))
        #expect(error.code == code)
        #expect(error.retryAfterSeconds == retry)
        #expect(error.detail?.contains("HTTP \(status)") == true)
    }

    @Test(arguments: [
        (HTTPFailure.Kind.dns, ClaimError.Code.leetcodeUnavailable), (.connect, .leetcodeUnavailable),
        (.proxy, .leetcodeUnavailable), (.tls, .leetcodeUnavailable), (.reset, .leetcodeUnavailable),
        (.timeout, .leetcodeUnavailable), (.tooLarge, .leetcodeBadResponse), (.malformed, .leetcodeBadResponse),
        (.invalidURL, .misconfigured), (.invalidProxy, .misconfigured), (.tlsSetup, .misconfigured),
    ])
    func transportFailures(kind: HTTPFailure.Kind, code: ClaimError.Code) {
        let error = LeetCodeClient.claimError(for: HTTPFailure(kind, "something"))
        #expect(error.code == code)
        #expect(error.detail == "\(kind.rawValue): something")
        #expect(error.retryAfterSeconds == (code == .leetcodeUnavailable ? 30 : nil))
    }
}
