import COpenSSL
import Glibc

/// An HTTP response: status, headers (lowercased names, in arrival order) and the decoded body.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    /// The first header named `name` (case-insensitive), or nil.
    public func header(_ name: String) -> String? {
        let name = name.lowercased()
        return headers.first { $0.0 == name }?.1
    }
}

/// Why an exchange failed. `kind` is for branching, `detail` for the log line.
public struct HTTPFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The URL is malformed, not http(s), or plain http to a host that is not loopback.
        case invalidURL = "invalid_url"
        /// HTTPS_PROXY is not an `http://host:port` URL.
        case invalidProxy = "invalid_proxy"
        /// SSL_CERT_FILE / SSL_CERT_DIR could not be loaded, or OpenSSL could not set up a context.
        case tlsSetup = "tls_setup"
        case dns
        /// No TCP connection: refused, unreachable.
        case connect
        /// The proxy refused the CONNECT tunnel.
        case proxy
        /// Handshake failed: untrusted certificate, wrong host name, protocol error.
        case tls
        /// The connection was reset or closed before the response was complete.
        case reset
        /// The whole exchange did not finish within the deadline.
        case timeout
        /// The response is over the size cap.
        case tooLarge = "too_large"
        /// The response is not valid HTTP/1.x.
        case malformed
    }

    public var kind: Kind
    public var detail: String

    public init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { "\(kind.rawValue): \(detail)" }
}

/// A small HTTP/1.1 client over OpenSSL for one request per process: no pooling, no redirects, no compression.
public enum HTTPClient {
    /// What the client reads from the process environment, passed in by the caller.
    public struct Environment: Sendable {
        public var sslCertFile: String?
        public var sslCertDir: String?
        public var httpsProxy: String?
        public var noProxy: String?

        public init(
            sslCertFile: String? = nil, sslCertDir: String? = nil, httpsProxy: String? = nil, noProxy: String? = nil
        ) {
            self.sslCertFile = sslCertFile
            self.sslCertDir = sslCertDir
            self.httpsProxy = httpsProxy
            self.noProxy = noProxy
        }
    }

    /// Cap on the status line plus headers.
    static let maxHeadBytes = 64 * 1024

    /// The request's target: an https URL, or plain http to a loopback host (tests). No I/O, so configuration
    /// can be checked before a request is served.
    static func endpoint(_ url: String) throws(HTTPFailure) -> URLParts {
        let target = try URLParts(url, what: .invalidURL)
        if !target.tls && !target.isLoopback {
            throw HTTPFailure(.invalidURL, "plain http is only allowed to a loopback host, not \(target.host)")
        }
        return target
    }

    /// An `HTTPS_PROXY` setting: `http://host:port`, the scheme optional.
    static func proxyEndpoint(_ setting: String) throws(HTTPFailure) -> URLParts {
        let parsed = try URLParts(setting.hasSubstring("://") ? setting : "http://" + setting, what: .invalidProxy)
        if parsed.tls { throw HTTPFailure(.invalidProxy, "only http:// proxies are supported") }
        return parsed
    }

    /// POSTs `body` to `url` and returns the response, whatever its status.
    ///
    /// One deadline of `timeoutMs` covers the whole exchange: connect, proxy tunnel, TLS handshake, write and
    /// read (DNS is a blocking getaddrinfo and only counts against it). `https` verifies the peer (TLS ≥ 1.2, SNI,
    /// host name); plain `http` is refused unless the host is loopback. `HTTPS_PROXY` is used through `CONNECT`
    /// unless `NO_PROXY` matches the host. Sets SIGPIPE to ignored: OpenSSL writes with write(2).
    /// - Throws: `HTTPFailure` saying which step failed.
    public static func post(
        url: String, headers: [(String, String)], body: [UInt8], timeoutMs: Int, maxResponseBytes: Int,
        environment: Environment
    ) throws(HTTPFailure) -> HTTPResponse {
        let deadline = Deadline(ms: timeoutMs)
        let target = try endpoint(url)
        var proxy: URLParts?
        if target.tls, let setting = environment.httpsProxy, !noProxyMatches(environment.noProxy, target.host) {
            proxy = try proxyEndpoint(setting)
        }
        let peer = proxy ?? target
        var stream: NetworkStream
        do throws(NetworkFailure) {
            stream = try NetworkStream.connect(host: peer.host, port: peer.port, deadline: deadline)
        } catch {
            throw proxy == nil ? HTTPFailure(error) : HTTPFailure(HTTPFailure(error).kind, "proxy \(error.detail)")
        }
        var context: OpaquePointer?
        defer {
            stream.close()
            SSL_CTX_free(context)
        }
        if proxy != nil { try tunnel(stream, to: target) }
        if target.tls {
            // Trusts SSL_CERT_FILE / SSL_CERT_DIR when set, else the system's hashed CA directory.
            let verifying = try network { () throws(NetworkFailure) in
                try NetworkStream.tlsContext(
                    caFile: environment.sslCertFile, caDir: environment.sslCertDir, verify: true)
            }
            context = verifying
            try network { () throws(NetworkFailure) in
                try stream.startTLS(
                    context: verifying, host: target.host, isIPLiteral: target.isIPLiteral, checkHost: true)
            }
        }

        var head = "POST \(target.path) HTTP/1.1\r\nHost: \(target.authority)\r\nConnection: close\r\n"
        head += "Content-Length: \(body.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        try network { () throws(NetworkFailure) in try stream.writeAll(Array(head.utf8) + body) }

        var parser = ResponseParser(maxBody: maxResponseBytes)
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = try network { () throws(NetworkFailure) in
                try stream.read(into: &buffer, phase: "reading the response")
            }
            if count == 0 { return try parser.finish() }
            if let response = try parser.feed(buffer[0..<count]) { return response }
        }
    }

    private static func tunnel(_ stream: NetworkStream, to target: URLParts) throws(HTTPFailure) {
        let authority = (target.isIPv6 ? "[\(target.host)]" : target.host) + ":\(target.port)"
        try network { () throws(NetworkFailure) in
            try stream.writeAll(Array("CONNECT \(authority) HTTP/1.1\r\nHost: \(authority)\r\n\r\n".utf8))
        }
        var raw: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = try network { () throws(NetworkFailure) in
                try stream.read(into: &buffer, phase: "waiting for the proxy's CONNECT answer")
            }
            if count == 0 { throw HTTPFailure(.proxy, "proxy closed the connection during CONNECT") }
            raw += buffer[0..<count]
            if let end = headEnd(raw) {  // a few hundred bytes at most: rescanning is fine
                let status = try parseHead(raw[0..<end]).status
                guard (200..<300).contains(status) else {
                    throw HTTPFailure(.proxy, "proxy answered CONNECT \(authority) with HTTP \(status)")
                }
                // The server speaks only after our ClientHello, so nothing may follow the proxy's answer.
                guard end == raw.count else { throw HTTPFailure(.proxy, "data after the proxy's CONNECT answer") }
                return
            }
            if raw.count > maxHeadBytes { throw HTTPFailure(.proxy, "proxy's CONNECT answer is too large") }
        }
    }

    private static func noProxyMatches(_ list: String?, _ host: String) -> Bool {
        guard let list else { return false }
        let host = host.lowercased()
        for item in list.split(whereSeparator: { $0 == "," || $0 == " " }) {
            var entry = item.lowercased()
            if entry == "*" { return true }
            if entry.hasPrefix("[") && entry.hasSuffix("]") { entry = String(entry.dropFirst().dropLast()) }
            while entry.hasPrefix(".") { entry.removeFirst() }
            if !entry.isEmpty && (host == entry || host.hasSuffix("." + entry)) { return true }
        }
        return false
    }
}

extension HTTPFailure {
    /// The same failure in this client's terms (the shared kinds have the same names).
    init(_ failure: NetworkFailure) {
        self.init(Kind(rawValue: failure.kind.rawValue) ?? .reset, failure.detail)
    }
}

/// Runs socket or TLS work from `NetworkStream`, reporting its failure as an `HTTPFailure`.
private func network<T>(_ body: () throws(NetworkFailure) -> T) throws(HTTPFailure) -> T {
    do throws(NetworkFailure) {
        return try body()
    } catch {
        throw HTTPFailure(error)
    }
}

// MARK: - URLs

/// The parts of an `http` / `https` URL that a request needs.
struct URLParts: Equatable {
    var tls: Bool
    /// Lowercased; an IPv6 literal without its brackets.
    var host: String
    var port: Int
    /// Origin form: path plus query, at least "/".
    var path: String
    var isIPv6 = false

    init(_ url: String, what kind: HTTPFailure.Kind) throws(HTTPFailure) {
        // The URL is not quoted: a proxy URL may carry a password, and the detail goes to the log.
        func fail(_ reason: String) -> HTTPFailure { HTTPFailure(kind, reason) }
        guard url.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw fail("space or non-ASCII in URL") }
        let lower = url.lowercased()
        let rest: Substring
        if lower.hasPrefix("https://") {
            tls = true
            rest = url.dropFirst(8)
        } else if lower.hasPrefix("http://") {
            tls = false
            rest = url.dropFirst(7)
        } else {
            throw fail("not an http(s) URL")
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let remainder = rest[authority.endIndex...].prefix { $0 != "#" }
        path = remainder.hasPrefix("/") ? String(remainder) : "/" + remainder
        if authority.contains("@") { throw fail("credentials in URL are not supported") }

        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw fail("unclosed [ in host") }
            host = String(authority[authority.index(after: authority.startIndex)..<close]).lowercased()
            var address = in6_addr()
            guard inet_pton(AF_INET6, host, &address) == 1 else { throw fail("invalid IPv6 address") }
            isIPv6 = true
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw fail("junk after ]") }
                portText = after.dropFirst()
            }
        } else {
            let parts = authority.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { throw fail("invalid host") }
            host = parts[0].lowercased()
            portText = parts.count == 2 ? parts[1] : nil
            let allowed = { (c: UInt8) in
                (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2D || c == 0x2E || c == 0x5F
            }
            guard !host.isEmpty, host.utf8.allSatisfy(allowed) else { throw fail("invalid host") }
        }
        if let portText {
            guard portText.count <= 5, portText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                let port = Int(portText), (1...65535).contains(port)
            else { throw fail("invalid port") }
            self.port = port
        } else {
            port = tls ? 443 : 80
        }
    }

    /// The Host header value.
    var authority: String {
        let name = isIPv6 ? "[\(host)]" : host
        return port == (tls ? 443 : 80) ? name : "\(name):\(port)"
    }

    var isIPLiteral: Bool {
        var address = in_addr()
        return isIPv6 || inet_pton(AF_INET, host, &address) == 1
    }

    /// `localhost`, 127.0.0.0/8 or ::1.
    var isLoopback: Bool {
        if host == "localhost" { return true }
        if isIPv6 {
            var address = in6_addr()
            guard inet_pton(AF_INET6, host, &address) == 1 else { return false }
            return withUnsafeBytes(of: &address) { $0.elementsEqual([UInt8](repeating: 0, count: 15) + [1]) }
        }
        var address = in_addr()
        guard inet_pton(AF_INET, host, &address) == 1 else { return false }
        return withUnsafeBytes(of: &address) { $0.first == 127 }
    }
}

// MARK: - Response parsing

/// The index just past the blank line ending the header section, or nil if not received yet. `from` lets a
/// caller skip what it already scanned, so a peer that trickles bytes cannot make the scan quadratic.
private func headEnd(_ raw: [UInt8], from start: Int = 0) -> Int? {
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
private func parseHead(_ bytes: ArraySlice<UInt8>) throws(HTTPFailure) -> (status: Int, headers: [(String, String)]) {
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

private func trimmed(_ text: Substring) -> String {
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

    init(maxBody: Int) { self.maxBody = maxBody }

    /// Adds received bytes; returns the response once it is complete.
    mutating func feed(_ bytes: ArraySlice<UInt8>) throws(HTTPFailure) -> HTTPResponse? {
        raw += bytes
        // Chunk framing adds a few bytes per chunk; this bounds what a hostile peer can make us buffer.
        if raw.count > 2 * maxBody + HTTPClient.maxHeadBytes {
            throw HTTPFailure(.tooLarge, "response over \(maxBody) bytes")
        }
        while head == nil {
            guard let end = headEnd(raw, from: scanned) else {
                if raw.count > HTTPClient.maxHeadBytes { throw HTTPFailure(.tooLarge, "header section over 64 KiB") }
                scanned = raw.count
                return nil
            }
            let parsed = try parseHead(raw[0..<end])
            if (100..<200).contains(parsed.status) {
                raw.removeFirst(end)  // interim response such as 100 Continue
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
