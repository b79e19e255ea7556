import Testing

@testable import ClaimCore

/// The HTTP response reader without a socket: framings, failures, and the caps however the bytes arrive.
@Suite struct ResponseParserTests {
    /// Feeds `text` one byte at a time, then ends the stream: every split point must work.
    func parse(_ text: String, max: Int = 1000) throws(HTTPFailure) -> HTTPResponse {
        var parser = ResponseParser(maxBody: max)
        for byte in text.utf8 {
            if let response = try parser.feed([byte]) { return response }
        }
        return try parser.finish()
    }

    @Test func contentLength() throws {
        let response = try parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhello")
        #expect(response.status == 200)
        #expect(response.body == Array("hello".utf8))
        #expect(response.header("X-a") == "b")
    }

    @Test func chunkedWithExtensionsAndTrailers() throws {
        let text =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n4;x=y\r\nWiki\r\n5\r\npedia\r\n"
            + "E\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: 1\r\n\r\n"
        #expect(try parse(text).body == Array("Wikipedia in\r\n\r\nchunks.".utf8))
    }

    @Test func readToCloseAndBareLineFeeds() throws {
        let response = try parse("HTTP/1.0 404 Not Found\nServer: x\n\n{\"a\":1}")
        #expect(response.status == 404)
        #expect(response.body == Array("{\"a\":1}".utf8))
    }

    @Test func interimResponsesAreSkipped() throws {
        let response = try parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
        #expect(response.status == 201)
        #expect(response.body == Array("ok".utf8))
    }

    @Test func noBodyFor204() throws {
        #expect(try parse("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n").body.isEmpty)
    }

    @Test(arguments: [
        ("HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n", HTTPFailure.Kind.tooLarge),
        ("HTTP/1.1 200 OK\r\n\r\n" + String(repeating: "x", count: 1001), .tooLarge),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3E9\r\n", .tooLarge),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", .reset),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", .reset),
        ("HTTP/1.1 200 OK\r\nContent-Le", .reset),
        ("", .reset),
        ("SSH-2.0-OpenSSH\r\n\r\n", .malformed),
        ("HTTP/1.1 20 OK\r\n\r\n", .malformed),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello", .malformed),
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", .malformed),
        ("HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", .malformed),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .malformed),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", .malformed),
    ])
    func failures(text: String, kind: HTTPFailure.Kind) {
        let error = #expect(throws: HTTPFailure.self) { _ = try parse(text) }
        #expect(error?.kind == kind, "\(String(describing: error))")
    }

    @Test func headerSectionIsCapped() {
        let text = "HTTP/1.1 200 OK\r\n" + String(repeating: "X-Padding: 0123456789\r\n", count: 4000)
        let error = #expect(throws: HTTPFailure.self) { _ = try parse(text, max: 10) }
        #expect(error?.kind == .tooLarge)
    }

    /// The cap is on the head, not on a read: a 79 KiB head is refused whether it arrives in one piece, in TLS-sized
    /// pieces or in 1000-byte pieces, and a head just under the cap is accepted in all three.
    @Test(arguments: [1000, 16 * 1024, 200 * 1024])
    func headCapDoesNotDependOnSegmentation(piece: Int) throws {
        func head(_ size: Int) -> [UInt8] {
            var text = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n".utf8)
            let line = Array("X-Pad: \(String(repeating: "p", count: 91))\r\n".utf8)  // 100 bytes
            while text.count + line.count + 2 <= size { text += line }
            text += Array("X-Fill: ".utf8) + [UInt8](repeating: 0x66, count: size - text.count - 12) + Array("\r\n\r\n".utf8)
            return text + Array("ok".utf8)
        }
        func feed(_ bytes: [UInt8]) throws(HTTPFailure) -> HTTPResponse? {
            var parser = ResponseParser(maxBody: 10)
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + piece, bytes.count)
                if let response = try parser.feed(bytes[offset..<end]) { return response }
                offset = end
            }
            return nil
        }
        let large = head(79 * 1024)
        #expect(large.count == 79 * 1024 + 2)
        let error = #expect(throws: HTTPFailure.self) { _ = try feed(large) }
        #expect(error?.kind == .tooLarge)
        let fits = head(HTTPClient.maxHeadBytes)
        #expect(try feed(fits)?.body == Array("ok".utf8))
    }

    /// Many small chunks: decoded chunks are dropped from the buffer as the body grows, at any read size.
    @Test(arguments: [7, 1000, 1 << 20])
    func manySmallChunksAcrossTheBufferCompaction(piece: Int) throws {
        var text = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        var expected: [UInt8] = []
        for i in 0..<30_000 {
            let byte = UInt8(0x61 + i % 26)
            text += Array("1;e=\(i % 10)\r\n".utf8) + [byte] + Array("\r\n".utf8)
            expected.append(byte)
        }
        text += Array("0\r\nX-T: 1\r\n\r\n".utf8)
        var parser = ResponseParser(maxBody: 200_000)
        var response: HTTPResponse?
        var offset = 0
        while offset < text.count, response == nil {
            let end = min(offset + piece, text.count)
            response = try parser.feed(text[offset..<end])
            offset = end
        }
        #expect(response?.body == expected)
        #expect(offset == text.count)
    }

    @Test func interimHeadsCountAgainstTheCap() {
        let interim = "HTTP/1.1 100 Continue\r\nX: " + String(repeating: "i", count: 40_000) + "\r\n\r\n"
        let text = interim + "HTTP/1.1 200 OK\r\nX: " + String(repeating: "f", count: 30_000) + "\r\n\r\n"
        let error = #expect(throws: HTTPFailure.self) { _ = try parse(text, max: 10) }
        #expect(error?.kind == .tooLarge)
    }
}
