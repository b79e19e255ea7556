import Testing

@testable import ClaimCore

/// Frontend message encoding and backend message decoding, byte for byte
/// (https://www.postgresql.org/docs/15/protocol-message-formats.html), and the reader's byte budget.
@Suite struct PostgresMessageTests {
    static func frame(_ type: Character, _ body: [UInt8]) -> [UInt8] {
        [type.asciiValue ?? 0] + FrontendMessage.int32(Int32(body.count + 4)) + body
    }

    static func decode(_ type: Character, _ body: [UInt8]) throws(PostgresError) -> BackendMessage {
        try BackendMessage.decode(type: type.asciiValue ?? 0, body: body[...])
    }

    @Test func sslRequest() {
        #expect(FrontendMessage.sslRequest() == [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F])
    }

    @Test func startup() {
        let bytes = FrontendMessage.startup([("user", "u"), ("database", "d")])
        let body: [UInt8] = [0, 3, 0, 0] + Array("user\0u\0database\0d\0\0".utf8)
        #expect(bytes == [0, 0, 0, UInt8(body.count + 4)] + body)
    }

    @Test func parseBindExecuteSync() {
        #expect(
            FrontendMessage.parse("SELECT 1") == [UInt8(ascii: "P"), 0, 0, 0, 16, 0] + Array("SELECT 1\0".utf8) + [0, 0])
        let bind = FrontendMessage.bind(["ab", nil])
        let body: [UInt8] = [0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0x61, 0x62, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0]
        #expect(bind == [UInt8(ascii: "B"), 0, 0, 0, UInt8(body.count + 4)] + body)
        #expect(FrontendMessage.execute() == [UInt8(ascii: "E"), 0, 0, 0, 9, 0, 0, 0, 0, 0])
        #expect(FrontendMessage.sync() == [UInt8(ascii: "S"), 0, 0, 0, 4])
        #expect(FrontendMessage.terminate() == [UInt8(ascii: "X"), 0, 0, 0, 4])
    }

    @Test func saslMessages() {
        let initial = FrontendMessage.saslInitialResponse("SCRAM-SHA-256", Array("n,,n=,r=x".utf8))
        let body = Array("SCRAM-SHA-256\0".utf8) + [0, 0, 0, 9] + Array("n,,n=,r=x".utf8)
        #expect(initial == [UInt8(ascii: "p"), 0, 0, 0, UInt8(body.count + 4)] + body)
        #expect(FrontendMessage.password(Array("pw".utf8)) == [UInt8(ascii: "p"), 0, 0, 0, 7, 0x70, 0x77, 0])
    }

    @Test(arguments: [
        ("R", [0, 0, 0, 0], BackendMessage.authentication(.ok)),
        ("R", [0, 0, 0, 3], .authentication(.cleartextPassword)),
        ("R", [0, 0, 0, 5, 9, 8, 7, 6], .authentication(.md5Password(salt: [9, 8, 7, 6]))),
        ("R", [0, 0, 0, 10] + Array("SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0".utf8),
            .authentication(.sasl(mechanisms: ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]))),
        ("R", [0, 0, 0, 11] + Array("r=x".utf8), .authentication(.saslContinue(Array("r=x".utf8)))),
        ("R", [0, 0, 0, 12] + Array("v=y".utf8), .authentication(.saslFinal(Array("v=y".utf8)))),
        ("R", [0, 0, 0, 7], .authentication(.unsupported(7))),
        ("S", Array("TimeZone\0UTC\0".utf8), .parameterStatus),
        ("K", [0, 0, 0, 1, 0, 0, 0, 2], .backendKeyData),
        ("v", [0, 0, 0, 0, 0, 0, 0, 1] + Array("_pq_.x\0".utf8), .negotiateProtocolVersion),
        ("Z", [UInt8(ascii: "T")], .readyForQuery(.inTransaction)),
        ("1", [], .parseComplete),
        ("2", [], .bindComplete),
        ("D", [0, 2, 0, 0, 0, 2, 0x68, 0x69, 0xFF, 0xFF, 0xFF, 0xFF], .dataRow(["hi", nil])),
        ("C", Array("INSERT 0 1\0".utf8), .commandComplete),
        ("I", [], .emptyQueryResponse),
        ("n", [], .noData),
        ("s", [], .portalSuspended),
        ("T", [0, 0], .rowDescription),
        ("t", [0, 0], .parameterDescription),
        ("A", [0, 0, 0, 1] + Array("chan\0payload\0".utf8), .notification),
        ("N", Array("SNOTICE\0Mhi\0\0".utf8), .notice),
        ("E", Array("SERROR\0VERROR\0C23505\0Mduplicate key value\0nprofiles_one_per_user\0Dsecret\0\0".utf8),
            .error(.init(severity: "ERROR", sqlState: "23505", message: "duplicate key value",
                constraint: "profiles_one_per_user"))),
    ] as [(String, [UInt8], BackendMessage)])
    func decodes(type: String, body: [UInt8], expected: BackendMessage) throws {
        #expect(try PostgresMessageTests.decode(Character(type), body) == expected)
    }

    @Test(arguments: [
        ("R", []),  // no code
        ("R", [0, 0, 0, 0, 1]),  // Ok with a trailing byte
        ("R", [0, 0, 0, 5, 1, 2]),  // MD5 salt short
        ("R", [0, 0, 0, 10] + Array("SCRAM-SHA-256".utf8)),  // unterminated mechanism
        ("Z", [UInt8(ascii: "X")]),  // unknown transaction status
        ("Z", []),
        ("1", [0]),  // ParseComplete has no body
        ("D", [0, 1, 0, 0, 0, 5, 0x61]),  // column longer than the message
        ("D", [0xFF, 0xFF]),  // negative column count
        ("D", [0, 1, 0xFF, 0xFF, 0xFF, 0xFE]),  // negative column length other than -1
        ("K", [0, 0, 0, 1]),
        ("E", Array("SERROR\0Mno terminator".utf8)),
        ("C", Array("INSERT".utf8)),
        ("G", [0, 0, 0]),  // CopyInResponse: never asked for
        ("\u{01}", []),
    ] as [(String, [UInt8])])
    func malformedIsAProtocolViolation(type: String, body: [UInt8]) {
        let error = #expect(throws: PostgresError.self) { _ = try PostgresMessageTests.decode(Character(type), body) }
        #expect(error?.kind == .protocolViolation)
    }

    @Test func sqlStateMustBeFiveDigitsOrCapitals() throws {
        let odd = try PostgresMessageTests.decode("E", Array("SERROR\0Chunter2\0Mx\0\0".utf8))
        #expect(odd == .error(.init(severity: "ERROR", sqlState: nil, message: "x")))
    }

    @Test func readerSplitsMessagesAcrossReads() throws {
        var reader = MessageReader()
        let stream =
            PostgresMessageTests.frame("Z", [UInt8(ascii: "I")])
            + PostgresMessageTests.frame("D", [0, 2, 0, 0, 0, 2, 0x68, 0x69, 0xFF, 0xFF, 0xFF, 0xFF])
        var messages: [BackendMessage] = []
        for byte in stream {  // one byte per read: the worst a network can do
            reader.append([byte][...])
            while let message = try reader.next() { messages.append(message) }
        }
        #expect(messages == [.readyForQuery(.idle), .dataRow(["hi", nil])])
    }

    @Test func readerRefusesAbsurdLengthsBeforeTheBodyArrives() {
        var reader = MessageReader()
        reader.append([UInt8(ascii: "D"), 0x7F, 0xFF, 0xFF, 0xFF][...])
        #expect(throws: PostgresError.self) { _ = try reader.next() }
        var short = MessageReader()
        short.append([UInt8(ascii: "D"), 0, 0, 0, 3][...])
        #expect(throws: PostgresError.self) { _ = try short.next() }
    }

    /// Many small rows add up: the budget is on the answer, not on each message.
    @Test func answerOverTheBudgetIsRefused() throws {
        var reader = MessageReader()
        let row = PostgresMessageTests.frame("D", [0, 1, 0, 0, 3, 0xE8] + [UInt8](repeating: 0x61, count: 1000))
        var taken = 0
        var refused: PostgresError?
        for _ in 0..<100 {
            reader.append(row[...])
            do throws(PostgresError) {
                while try reader.next() != nil { taken += row.count }
            } catch {
                refused = error
                break
            }
        }
        #expect(refused?.kind == .protocolViolation)
        #expect(taken <= MessageReader.maxExchangeBytes)
        #expect(taken > MessageReader.maxExchangeBytes - row.count)
    }

    @Test func budgetIsWholeAgainForTheNextAnswer() throws {
        var reader = MessageReader()
        let row = PostgresMessageTests.frame("D", [0, 1, 0, 0, 0x7F, 0xF0] + [UInt8](repeating: 0x61, count: 0x7FF0))
        for _ in 0..<6 {
            reader.startExchange()
            reader.append(row[...])
            #expect(try reader.next() != nil)
        }
    }
}
