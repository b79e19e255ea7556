import Testing

@testable import ClaimCore

/// The request object for `text`, parsed the way the handler parses stdin.
private func object(_ text: String) throws -> JSON { try Request.parseObject(Array(text.utf8)) }

/// The `ClaimError` that `Request.init` throws for `text`.
private func requestError(_ text: String) throws -> ClaimError {
    let value = try object(text)
    return try #require(throws: ClaimError.self) { _ = try Request(value) }
}

@Suite struct UsernameRuleTests {
    @Test(arguments: [
        (" Alice ", "alice"),
        ("\tBOB\n", "bob"),
        ("\u{0B}\u{0C}\r x \r\n", "x"),
        ("A-B_C.9", "a-b_c.9"),
        ("a b", "a b"),
        ("   ", ""),
        ("", ""),
        ("\u{212A}ate", "\u{212A}ate"),  // Kelvin sign: not folded to "k"
        ("ＡＢＣ", "ＡＢＣ"),  // fullwidth letters: not folded either
        ("ÀB", "Àb"),  // only ASCII letters are lowercased
        ("\u{A0}bob\u{A0}", "\u{A0}bob\u{A0}"),  // no-break space is not ASCII whitespace
    ])
    func normalizeUsername(raw: String, expected: String) {
        #expect(Request.normalizeUsername(raw) == expected)
    }

    @Test(arguments: ["\u{212A}ate", "ＡＢＣ", "ａｌｉｃｅ", "Àb", "\u{A0}bob"])
    func lookAlikesStayInvalidAfterNormalizing(raw: String) {
        let normalized = Request.normalizeUsername(raw)
        #expect(normalized.unicodeScalars.contains { !$0.isASCII })
        #expect(!Request.isValidUsername(normalized))
    }

    @Test(arguments: [
        ("a", true),
        ("0", true),
        (String(repeating: "a", count: 64), true),
        (String(repeating: "z", count: 63) + "9", true),
        ("a.b_c-d", true),
        ("._-", true),
        ("", false),
        (String(repeating: "a", count: 65), false),
        ("a b", false),
        ("a/b", false),
        ("a'b", false),
        ("a;b", false),
        ("a\"b", false),
        ("a@b", false),
        ("a+b", false),
        ("Alice", false),  // the rule applies after lowercasing
        ("é", false),
        ("\u{212A}ate", false),
        ("a\u{0}", false),
        ("a\n", false),
    ])
    func isValidUsername(candidate: String, valid: Bool) {
        #expect(Request.isValidUsername(candidate) == valid)
    }

    @Test(arguments: [
        ("u", true),
        (String(repeating: "x", count: 128), true),
        ("!~", true),  // 0x21 and 0x7E, the ends of the printable range
        ("auth0|5f1c-ab_CD.ef", true),
        ("", false),
        (String(repeating: "x", count: 129), false),
        ("a b", false),
        ("a\u{7F}", false),
        ("a\u{1F}", false),
        ("a\t", false),
        ("é", false),
        ("user\u{212A}", false),
    ])
    func isValidUserID(candidate: String, valid: Bool) {
        #expect(Request.isValidUserID(candidate) == valid)
    }
}

@Suite struct RequestDecodingTests {
    @Test func validRequestKeepsEveryField() throws {
        let request = try Request(
            object(#"{"action":"verify","username":"  LeeT.Code_1 ","user_id":"u-1","token":"t","request_id":"r-1"}"#))
        #expect(request.action == .verify)
        #expect(request.username == "leet.code_1")
        #expect(request.userID == "u-1")
        #expect(request.token == "t")
        #expect(request.requestID == "r-1")
    }

    @Test(arguments: Request.Action.allCases)
    func everyActionDecodes(action: Request.Action) throws {
        let request = try Request(object(#"{"action":"\#(action.rawValue)","username":"a"}"#))
        #expect(request.action == action)
        #expect(request.userID == nil && request.token == nil && request.requestID == nil)
    }

    @Test func unknownFieldIsNamed() throws {
        let error = try requestError(#"{"action":"status","username":"a","colour":"red"}"#)
        #expect(error.code == .invalidRequest)
        #expect(error.message == #"unknown field "colour""#)
    }

    @Test func longUnknownFieldNameIsCut() throws {
        let key = String(repeating: "k", count: 200)
        let error = try requestError(#"{"\#(key)":1}"#)
        #expect(error.code == .invalidRequest)
        #expect(error.message == "unknown field \"\(String(repeating: "k", count: 64))...\"")
    }

    @Test(arguments: [
        (#"{"action":"status","username":5}"#, "username", "number"),
        (#"{"action":true,"username":"a"}"#, "action", "boolean"),
        (#"{"action":"status","username":"a","user_id":null}"#, "user_id", "null"),
        (#"{"action":"status","username":"a","token":["t"]}"#, "token", "array"),
        (#"{"action":"status","username":"a","request_id":{}}"#, "request_id", "object"),
    ])
    func wrongTypeIsInvalidRequest(text: String, field: String, typeName: String) throws {
        let error = try requestError(text)
        #expect(error.code == .invalidRequest)
        #expect(error.message == "field \"\(field)\" must be a string, not \(typeName)")
    }

    @Test func missingActionIsInvalidRequest() throws {
        let error = try requestError(#"{"username":"a"}"#)
        #expect(error.code == .invalidRequest)
        #expect(error.message == #"missing field "action""#)
    }

    @Test(arguments: ["claim", "STATUS", "", " status"])
    func unknownActionIsInvalidRequest(action: String) throws {
        let error = try requestError(#"{"action":"\#(action)","username":"a"}"#)
        #expect(error.code == .invalidRequest)
        #expect(error.message == "unknown action; expected one of: challenge, verify, release, status")
    }

    @Test func missingUsernameIsInvalidRequest() throws {
        let error = try requestError(#"{"action":"status"}"#)
        #expect(error.code == .invalidRequest)
        #expect(error.message == #"missing field "username""#)
    }

    @Test(arguments: [
        (String(repeating: "r", count: 128), true),
        (String(repeating: "é", count: 128), true),  // counted in characters, not bytes
        ("", true),
        (String(repeating: "r", count: 129), false),
    ])
    func requestIDLength(requestID: String, accepted: Bool) throws {
        let value = try object(#"{"action":"status","username":"a","request_id":"\#(requestID)"}"#)
        if accepted {
            #expect(try Request(value).requestID == requestID)
        } else {
            let error = try #require(throws: ClaimError.self) { _ = try Request(value) }
            #expect(error.code == .invalidRequest)
            #expect(error.message.contains("request_id"))
        }
    }

    @Test(arguments: ["", "   ", "a b", "a/b", "\\u212Aate", "ａ", String(repeating: "a", count: 65)])
    func badUsernameIsInvalidUsername(username: String) throws {
        let error = try requestError(#"{"action":"status","username":"\#(username)"}"#)
        #expect(error.code == .invalidUsername)
    }

    @Test func notAnObjectIsInvalidJSON() throws {
        let error = try #require(throws: ClaimError.self) { _ = try Request(.array([])) }
        #expect(error.code == .invalidJSON)
    }
}

@Suite struct RequestParseObjectTests {
    @Test(arguments: [
        ("", "request is empty; expected one JSON object"),
        ("[]", "request must be a JSON object, not an array"),
        ("[{\"action\":\"status\"}]", "request must be a JSON object, not an array"),
        ("\"status\"", "request must be a JSON object, not a string"),
        ("1", "request must be a JSON object, not a number"),
        ("null", "request must be a JSON object, not a null"),
    ])
    func rejectsNonObjects(text: String, message: String) throws {
        let error = try #require(throws: ClaimError.self) { _ = try object(text) }
        #expect(error.code == .invalidJSON)
        #expect(error.message == message)
    }

    @Test(arguments: ["{", "{\"a\":1,}", "{\"a\":1,\"a\":1}", " ", "{} {}"])
    func rejectsInvalidJSON(text: String) throws {
        let error = try #require(throws: ClaimError.self) { _ = try object(text) }
        #expect(error.code == .invalidJSON)
        #expect(error.message.hasPrefix("request is not valid JSON: "))
    }

    /// A valid request object padded with a token to exactly `size` bytes.
    private static func paddedRequest(size: Int) -> [UInt8] {
        let head = Array(#"{"action":"status","username":"a","token":""#.utf8)
        let tail = Array(#""}"#.utf8)
        return head + [UInt8](repeating: UInt8(ascii: "t"), count: size - head.count - tail.count) + tail
    }

    @Test func acceptsExactlyMaxBytes() throws {
        #expect(Request.maxBytes == 65536)
        let bytes = Self.paddedRequest(size: 65536)
        #expect(bytes.count == 65536)
        let value = try Request.parseObject(bytes)
        #expect(value["token"]?.stringValue?.count == 65536 - 45)  // 43 bytes before the token, 2 after
    }

    @Test func rejectsOneByteMoreAsPayloadTooLarge() throws {
        let bytes = Self.paddedRequest(size: 65537)
        let error = try #require(throws: ClaimError.self) { _ = try Request.parseObject(bytes) }
        #expect(error.code == .payloadTooLarge)
        // The size decides before the content: oversized garbage is also payload_too_large.
        let garbage = [UInt8](repeating: 0xFF, count: 65537)
        let garbageError = try #require(throws: ClaimError.self) { _ = try Request.parseObject(garbage) }
        #expect(garbageError.code == .payloadTooLarge)
    }
}

@Suite struct RequestEchoTests {
    @Test(
        arguments: [
            (#"{"action":"verify","request_id":"r-1"}"#, Request.Action.verify, "r-1"),
            (#"{"action":"release","username":5,"extra":true}"#, .release, nil),
            (#"{"action":"bogus","request_id":"r-2"}"#, nil, "r-2"),
            (#"{"action":"Verify","request_id":7}"#, nil, nil),
            (#"{"action":1,"request_id":null}"#, nil, nil),
            (#"{}"#, nil, nil),
            (
                #"{"action":"status","request_id":"\#(String(repeating: "r", count: 128))"}"#, .status,
                String(repeating: "r", count: 128)
            ),
            (#"{"action":"status","request_id":"\#(String(repeating: "r", count: 129))"}"#, .status, nil),
        ] as [(String, Request.Action?, String?)])
    func echoesOnlyKnownActionAndValidRequestID(text: String, action: Request.Action?, requestID: String?) throws {
        let echo = Request.echo(from: try object(text))
        #expect(echo.action == action)
        #expect(echo.requestID == requestID)
    }

    @Test func echoOfANonObjectIsEmpty() {
        let echo = Request.echo(from: .array([.string("verify")]))
        #expect(echo.action == nil && echo.requestID == nil)
    }
}
