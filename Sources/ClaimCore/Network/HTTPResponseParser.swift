/// The index just past the blank line ending the header section, or nil if not received yet. `from` lets a
/// caller skip what it already scanned, so a peer that trickles bytes cannot make the scan quadratic.
func headEnd(_ raw: [UInt8], from start: Int = 0) -> Int? {
    var i = max(start - 2, 0)
    while i < raw.count {
        if raw[i] == 0x0A {
            if i + 1 < raw.count && raw[i + 1] == 0x0A { return i + 2 }
            if i + 2 < raw.count && raw[i + 1] == 0x0D && raw[i + 2] == 0x0A { return i + 3 }
        }
        i += 1
    }
    return nil
}

/// Status line and headers (names lowercased); accepts bare LF line ends.
func parseHead(_ bytes: ArraySlice<UInt8>) throws(HTTPFailure) -> (status: Int, headers: [(String, String)]) {
    let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
        String(decoding: line.last == 0x0D ? line.dropLast() : line, as: UTF8.self)
    }
    let statusLine = lines.first ?? ""
    let fields = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
    guard fields.count >= 2, fields[0].hasPrefix("HTTP/1."), fields[1].count == 3,
        fields[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let status = Int(fields[1]), status >= 100
    else { throw HTTPFailure(.malformed, "bad status line \"\(statusLine.prefix(80))\"") }
    var headers: [(String, String)] = []
    for line in lines.dropFirst() where !line.isEmpty {
        guard let colon = line.firstIndex(of: ":"), colon != line.startIndex,
            !line.hasPrefix(" "), !line.hasPrefix("\t")
        else { throw HTTPFailure(.malformed, "bad header line \"\(line.prefix(80))\"") }
        headers.append((line[..<colon].lowercased(), trimmed(line[line.index(after: colon)...])))
    }
    return (status, headers)
}

func trimmed(_ text: Substring) -> String {
    let isSpace = { (c: Character) in c == " " || c == "\t" }
    return String(text.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
}

/// Incremental HTTP/1.1 response reader: Content-Length, chunked, or read-to-close bodies, with size caps.
struct ResponseParser {
    private enum Framing { case length(Int), chunked, close }
    private enum ChunkState { case size, data(Int), dataEnd, trailer }

    let maxBody: Int
    private var raw: [UInt8] = []
    private var head: (status: Int, headers: [(String, String)])?
    private var bodyStart = 0
    private var framing = Framing.close
    private var body: [UInt8] = []
    private var chunkState = ChunkState.size
    private var position = 0
    /// Where the next search for a line end starts: bytes before it are known to hold none.
    private var scanned = 0
    /// Bytes of interim (1xx) heads already dropped: they count against the head cap too.
    private var interimBytes = 0
    /// Every byte fed so far, including what was dropped from `raw`.
    private var received = 0

    init(maxBody: Int) { self.maxBody = maxBody }

    private static let headTooLarge = HTTPFailure(.tooLarge, "header section over 64 KiB")

    /// Adds received bytes; returns the response once it is complete.
    mutating func feed(_ bytes: ArraySlice<UInt8>) throws(HTTPFailure) -> HTTPResponse? {
        raw += bytes
        received += bytes.count
        // Chunk framing adds a few bytes per chunk; this bounds what a hostile peer can make us read.
        if received > 2 * maxBody + HTTPClient.maxHeadBytes {
            throw HTTPFailure(.tooLarge, "response over \(maxBody) bytes")
        }
        while head == nil {
            // The cap holds however the bytes arrive: on the head's own length once its end is seen, and on what
            // has arrived while it is not, so one large read and many small ones meet the same limit.
            guard let end = headEnd(raw, from: scanned) else {
                if interimBytes + raw.count > HTTPClient.maxHeadBytes { throw Self.headTooLarge }
                scanned = raw.count
                return nil
            }
            if interimBytes + end > HTTPClient.maxHeadBytes { throw Self.headTooLarge }
            let parsed = try parseHead(raw[0..<end])
            if (100..<200).contains(parsed.status) {
                raw.removeFirst(end)  // interim response such as 100 Continue
                interimBytes += end
                scanned = 0
                continue
            }
            head = parsed
            bodyStart = end
            position = end
            scanned = end
            try chooseFraming(parsed)
        }
        return try advance()
    }

    /// Called at end of stream: the response if it is complete.
    mutating func finish() throws(HTTPFailure) -> HTTPResponse {
        guard let head else {
            if raw.isEmpty { throw HTTPFailure(.reset, "connection closed without a response") }
            throw HTTPFailure(.reset, "connection closed inside the response header")
        }
        if let response = try advance() { return response }
        if case .close = framing {
            return HTTPResponse(status: head.status, headers: head.headers, body: Array(raw[bodyStart...]))
        }
        throw HTTPFailure(.reset, "connection closed after \(body.count) body bytes, before the end of the body")
    }

    private mutating func chooseFraming(_ head: (status: Int, headers: [(String, String)])) throws(HTTPFailure) {
        if head.status == 204 || head.status == 304 {
            framing = .length(0)
        } else if let coding = head.headers.last(where: { $0.0 == "transfer-encoding" })?.1 {
            // Only "chunked" as the final coding frames the body; anything else is read to close (RFC 9112 §6.3).
            let last = coding.split(separator: ",").last.map { trimmed($0).lowercased() }
            framing = last == "chunked" ? .chunked : .close
        } else {
            let values = head.headers.filter { $0.0 == "content-length" }
                .flatMap { $0.1.split(separator: ",", omittingEmptySubsequences: false).map(trimmed) }
            guard let first = values.first else { return }
            guard values.allSatisfy({ $0 == first }), first.count <= 18,
                first.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let length = Int(first)
            else { throw HTTPFailure(.malformed, "bad Content-Length \(values)") }
            if length > maxBody { throw HTTPFailure(.tooLarge, "Content-Length \(length) over \(maxBody) bytes") }
            framing = .length(length)
        }
    }

    private mutating func advance() throws(HTTPFailure) -> HTTPResponse? {
        guard let head else { return nil }
        switch framing {
        case .length(let length):
            guard raw.count - bodyStart >= length else { return nil }
            body = Array(raw[bodyStart..<bodyStart + length])
        case .close:
            if raw.count - bodyStart > maxBody { throw HTTPFailure(.tooLarge, "body over \(maxBody) bytes") }
            return nil
        case .chunked:
            guard try advanceChunks() else { return nil }
        }
        return HTTPResponse(status: head.status, headers: head.headers, body: body)
    }

    /// Decodes as many chunks as have arrived; true after the last chunk and trailers.
    private mutating func advanceChunks() throws(HTTPFailure) -> Bool {
        defer {
            // What was decoded is in `body`: drop it from `raw`, so that framing (a flood of one-byte chunks is
            // five bytes of it per byte of body) is not held twice.
            if position >= 64 * 1024 {
                raw.removeSubrange(..<position)
                scanned = max(scanned - position, 0)
                position = 0
            }
        }
        while true {
            switch chunkState {
            case .size:
                guard let (line, next) = try nextLine() else { return false }
                let digits = line.prefix { $0 != UInt8(ascii: ";") && $0 != 0x20 && $0 != 0x09 }
                // RFC 9112 §7.1: chunk-size = 1*HEXDIG. `Int(_:radix:)` alone would also take "-1" or "+5", and a
                // negative size would trap below (found by the HTTP response fuzzer).
                guard !digits.isEmpty, digits.count <= 15, digits.allSatisfy(\.isHexDigit),
                    let size = Int(String(decoding: digits, as: UTF8.self), radix: 16)
                else { throw HTTPFailure(.malformed, "bad chunk size line") }
                position = next
                if size > maxBody - body.count { throw HTTPFailure(.tooLarge, "chunked body over \(maxBody) bytes") }
                chunkState = size == 0 ? .trailer : .data(size)
            case .data(let left):
                let count = min(left, raw.count - position)
                if count == 0 { return false }
                body += raw[position..<position + count]
                position += count
                chunkState = left == count ? .dataEnd : .data(left - count)
            case .dataEnd:
                guard let (line, next) = try nextLine() else { return false }
                guard line.isEmpty else { throw HTTPFailure(.malformed, "chunk data longer than its size") }
                position = next
                chunkState = .size
            case .trailer:
                guard let (line, next) = try nextLine() else { return false }
                position = next
                if line.isEmpty { return true }
            }
        }
    }

    /// The line at `position` without its line end, and the index after it; nil until its LF has arrived.
    private mutating func nextLine() throws(HTTPFailure) -> (ArraySlice<UInt8>, Int)? {
        guard let lf = raw[max(position, scanned)...].firstIndex(of: 0x0A) else {
            if raw.count - position > 4096 { throw HTTPFailure(.malformed, "chunk or trailer line over 4 KiB") }
            scanned = raw.count
            return nil
        }
        let line = raw[position..<lf]
        return (line.last == 0x0D ? line.dropLast() : line, lf + 1)
    }
}

extension UInt8 {
    /// 0-9, a-f, A-F.
    fileprivate var isHexDigit: Bool {
        (0x30...0x39).contains(self) || (0x41...0x46).contains(self) || (0x61...0x66).contains(self)
    }
}
