import Testing

@testable import ClaimCore

/// The parser's bytes for a Swift string literal.
private func parse(_ text: String) throws(JSONParseError) -> JSON { try JSONParser.parse(Array(text.utf8)) }

@Suite struct JSONParserTests {
    @Test(
        arguments: [
            ("null", JSON.null),
            ("true", .bool(true)),
            ("false", .bool(false)),
            ("0", .number("0")),
            ("-0", .number("-0")),
            ("12.5e-3", .number("12.5e-3")),
            ("1E+2", .number("1E+2")),
            ("\"\"", .string("")),
            ("\"héllo\"", .string("héllo")),
            ("[]", .array([])),
            ("{}", .object([])),
            (" \t\r\n[1, \"a\", null] \n", .array([.number("1"), .string("a"), .null])),
            (
                "{\"b\":1,\"a\":{\"c\":[true]}}",
                .object([("b", .number("1")), ("a", .object([("c", .array([.bool(true)]))]))])
            ),
        ] as [(String, JSON)])
    func parsesValidValues(text: String, expected: JSON) throws {
        #expect(try parse(text) == expected)
    }

    @Test func objectMembersKeepSourceOrder() throws {
        let value = try parse(#"{"z":1,"a":2,"m":3}"#)
        guard case .object(let members) = value else {
            Issue.record("not an object: \(value)")
            return
        }
        #expect(members.map(\.0) == ["z", "a", "m"])
    }

    @Test(arguments: ["1e999999", "123456789012345678901234567890", "-0.000000000000000000000000000001", "1E-999999"])
    func numbersKeepTheirSourceText(text: String) throws {
        #expect(try parse(text) == .number(text))
    }

    @Test func stringEscapesDecode() throws {
        let value = try parse(#""\" \\ \/ \b \f \n \r \t \u0041 \u00e9 \u20AC""#)
        #expect(value == .string("\" \\ / \u{08} \u{0C} \n \r \t A é €"))
    }

    @Test(arguments: [
        (#""\ud83d\ude00""#, "\u{1F600}"),
        (#""\uD834\uDD1E""#, "\u{1D11E}"),
        (#""\udbff\udfff""#, "\u{10FFFF}"),
        (#""\ud800\udc00""#, "\u{10000}"),
    ])
    func surrogatePairsBecomeOneScalar(text: String, expected: String) throws {
        let value = try parse(text)
        #expect(value == .string(expected))
        #expect(value.stringValue?.unicodeScalars.count == 1)
    }

    @Test(arguments: [
        #"{"a":1,"a":2}"#,
        #"{"a":1,"b":{"c":1,"c":1}}"#,
        #"[{"x":null,"x":null}]"#,
        #"{"\u0061":1,"a":2}"#,
    ])
    func rejectsDuplicateKeys(text: String) throws {
        let error = try #require(throws: JSONParseError.self) { try parse(text) }
        #expect(error.reason.hasPrefix("duplicate key"))
    }

    @Test func duplicateKeyErrorPointsAtTheSecondKey() throws {
        let error = try #require(throws: JSONParseError.self) { try parse(#"{"a":1,"a":2}"#) }
        #expect(error == JSONParseError(reason: "duplicate key \"a\"", offset: 7))
    }

    @Test(arguments: [
        #""\ud800""#,
        #""\udc00""#,
        #""\ud800x""#,
        #""\ud800\u0041""#,
        #""\ud800\ud800""#,
        #""\udc00\ud800""#,
        #""\ud800\n""#,
    ])
    func rejectsLoneSurrogates(text: String) throws {
        let error = try #require(throws: JSONParseError.self) { try parse(text) }
        #expect(error.reason == "lone surrogate in \\u escape")
    }

    @Test(
        arguments: [
            [0xC0, 0x80],  // overlong NUL
            [0xC1, 0xBF],  // overlong
            [0xE0, 0x80, 0xAF],  // overlong '/'
            [0xED, 0xA0, 0x80],  // UTF-16 surrogate D800
            [0xF0, 0x80, 0x80, 0xAF],  // overlong
            [0xF4, 0x90, 0x80, 0x80],  // above U+10FFFF
            [0xF5, 0x80, 0x80, 0x80],
            [0xFF],
            [0x80],  // lone continuation byte
            [0xE2, 0x82],  // truncated € before the closing quote
            [0xF0, 0x9F, 0x98],  // truncated 😀
        ] as [[UInt8]])
    func rejectsInvalidUTF8InStrings(sequence: [UInt8]) throws {
        let bytes = [UInt8(ascii: "\"")] + sequence + [UInt8(ascii: "\"")]
        let error = try #require(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
        #expect(error == JSONParseError(reason: "invalid UTF-8", offset: 1))
    }

    @Test func rejectsSequenceTruncatedByEndOfInput() throws {
        let error = try #require(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xE2, 0x82]) }
        #expect(error.reason == "invalid UTF-8")
    }

    @Test(
        arguments: [
            [0xC3, 0xA9], [0xE2, 0x82, 0xAC], [0xF0, 0x9F, 0x98, 0x80], [0xF4, 0x8F, 0xBF, 0xBF], [0xEF, 0xBF, 0xBF],
        ] as [[UInt8]])
    func acceptsWellFormedUTF8(sequence: [UInt8]) throws {
        let bytes = [UInt8(ascii: "\"")] + sequence + [UInt8(ascii: "\"")]
        #expect(try JSONParser.parse(bytes) == .string(String(decoding: sequence, as: UTF8.self)))
    }

    @Test(arguments: [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F] as [UInt8])
    func rejectsRawControlCharactersInStrings(byte: UInt8) throws {
        let bytes: [UInt8] = [0x22, 0x61, byte, 0x62, 0x22]
        let error = try #require(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
        #expect(error == JSONParseError(reason: "control character in string", offset: 2))
    }

    @Test(arguments: [
        "[1,]", "{\"a\":1,}", "[,1]", "{,}",
        "01", "-01", "00", "-", "1.", ".5", "+1", "1e", "1e+", "-.5", "0x10",
        "NaN", "Infinity", "-Infinity", "nan",
        "'a'", "{'a':1}", "{a:1}",
        "[1] x", "{} {}", "1 2", "nulll", "truex", "tru", "nul",
        "", " ", "\n\t",
        "[", "{", "\"abc", "[1", "{\"a\"", "{\"a\":", "{\"a\" 1}",
        "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\U0041\"",
    ])
    func rejectsMalformedText(text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test func emptyInputNamesTheProblem() throws {
        let error = try #require(throws: JSONParseError.self) { try JSONParser.parse([]) }
        #expect(error == JSONParseError(reason: "empty input", offset: 0))
    }

    @Test func trailingGarbageNamesTheProblem() throws {
        let error = try #require(throws: JSONParseError.self) { try parse("{} x") }
        #expect(error == JSONParseError(reason: "unexpected data after the JSON value", offset: 3))
    }

    @Test(arguments: [("[", "]"), ("{\"k\":", "}")])
    func depthOf64IsAcceptedAnd65Rejected(open: String, close: String) throws {
        let ok = String(repeating: open, count: 64) + "1" + String(repeating: close, count: 64)
        #expect(throws: Never.self) { try parse(ok) }
        let tooDeep = String(repeating: open, count: 65) + "1" + String(repeating: close, count: 65)
        let error = try #require(throws: JSONParseError.self) { try parse(tooDeep) }
        #expect(error.reason == "nested deeper than 64 levels")
    }

    @Test func valueBudgetCountsEveryValueAtEveryDepth() throws {
        // The object, its two member values (1 and the array), the array's three elements: 6 values.
        let text = Array(#"{"a":1,"b":[true,null,"x"]}"#.utf8)
        #expect(throws: Never.self) { _ = try JSONParser.parse(text, maxValues: 6) }
        let error = #expect(throws: JSONParseError.self) { _ = try JSONParser.parse(text, maxValues: 5) }
        #expect(error?.reason == "more than 5 values")
    }

    @Test func siblingContainersDoNotAccumulateDepth() throws {
        // 100 sibling arrays at depth 2: depth must go back down after each one closes.
        let text = "[" + Array(repeating: "[[]]", count: 100).joined(separator: ",") + "]"
        #expect(throws: Never.self) { try parse(text) }
        let objects = "[" + Array(repeating: "{\"a\":{}}", count: 100).joined(separator: ",") + "]"
        #expect(throws: Never.self) { try parse(objects) }
    }

    @Test func hundredThousandOpeningBracketsFailWithoutCrashing() throws {
        let bytes = [UInt8](repeating: UInt8(ascii: "["), count: 100_000)
        let error = try #require(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
        #expect(error.reason == "nested deeper than 64 levels")
        let objects = Array(String(repeating: "{\"a\":", count: 100_000).utf8)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(objects) }
    }
}

@Suite struct JSONWriterTests {
    @Test(arguments: [
        ("say \"hi\"", #""say \"hi\"""#),
        ("back\\slash", #""back\\slash""#),
        ("a\u{01}b", #""a\u0001b""#),
        ("\u{1F}", #""\u001f""#),
        ("\u{08}\u{0C}", #""\u0008\u000c""#),
        ("line\nfeed\r\ttab", #""line\nfeed\r\ttab""#),
        ("sep\u{2028}para\u{2029}", #""sep\u2028para\u2029""#),
        ("slash / é 😀", "\"slash / é 😀\""),
    ])
    func escapesStrings(input: String, expected: String) {
        #expect(JSONWriter.serialize(.string(input)) == expected)
    }

    @Test(arguments: [
        "", "plain", "\"\\\u{00}\u{01}\u{1F}\u{7F}", "\u{2028}\u{2029}", "multi\nline\r\n", "é€😀\u{10FFFF}",
    ])
    func stringsRoundTripThroughTheParser(input: String) throws {
        let text = JSONWriter.serialize(.string(input))
        #expect(!text.contains("\n") && !text.contains("\u{2028}") && !text.contains("\u{2029}"))
        #expect(try JSONParser.parse(Array(text.utf8)) == .string(input))
    }

    @Test func valuesRoundTripThroughTheParser() throws {
        let value: JSON = .object([
            ("z", .null), ("b", .bool(false)), ("n", .number("1e999999")),
            ("s", .string("q\"\\\u{2028}\u{01}")), ("a", .array([.array([]), .object([]), .bool(true)])),
        ])
        let text = JSONWriter.serialize(value)
        #expect(text == #"{"z":null,"b":false,"n":1e999999,"s":"q\"\\\u2028\u0001","a":[[],{},true]}"#)
        #expect(try JSONParser.parse(Array(text.utf8)) == value)
    }
}
