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
        let stream: NetworkStream
        do throws(NetworkFailure) {
            stream = try NetworkStream.connect(host: peer.host, port: peer.port, deadline: deadline)
        } catch {
            throw proxy == nil ? HTTPFailure(error) : HTTPFailure(HTTPFailure(error).kind, "proxy \(error.detail)")
        }
        if proxy != nil { try tunnel(stream, to: target) }
        if target.tls {
            // Trusts SSL_CERT_FILE / SSL_CERT_DIR when set, else the system's hashed CA directory.
            try network { () throws(NetworkFailure) in
                try stream.startTLS(
                    host: target.host, isIPLiteral: target.isIPLiteral, verify: true, checkHost: true,
                    caFile: environment.sslCertFile, caDir: environment.sslCertDir)
            }
        }

        let head = requestHead(
            "POST", target.path, authority: target.authority, headers: headers, bodyCount: body.count, close: true)
        try network { () throws(NetworkFailure) in try stream.writeAll(head + body) }
        return try readResponse(from: stream, maxResponseBytes: maxResponseBytes).response
    }

    /// The request line and headers, ending with the blank line. Content-Length is sent with any body and on every
    /// request but a GET.
    static func requestHead(
        _ method: String, _ path: String, authority: String, headers: [(String, String)], bodyCount: Int, close: Bool
    ) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(authority)\r\n"
        if close { head += "Connection: close\r\n" }
        if bodyCount > 0 || method != "GET" { head += "Content-Length: \(bodyCount)\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        return Array(head.utf8)
    }

    /// Reads one response from `stream`; `closed` when the peer ended the connection (a body read to the close).
    static func readResponse(from stream: NetworkStream, maxResponseBytes: Int) throws(HTTPFailure)
        -> (response: HTTPResponse, closed: Bool)
    {
        var parser = ResponseParser(maxBody: maxResponseBytes)
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = try network { () throws(NetworkFailure) in
                try stream.read(into: &buffer, phase: "reading the response")
            }
            if count == 0 { return (try parser.finish(), true) }
            if let response = try parser.feed(buffer[0..<count]) { return (response, false) }
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
                // However the bytes were split into reads: the cap is on the head, not on what one read held.
                if end > maxHeadBytes { throw HTTPFailure(.proxy, "proxy's CONNECT answer is too large") }
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
func network<T>(_ body: () throws(NetworkFailure) -> T) throws(HTTPFailure) -> T {
    do throws(NetworkFailure) {
        return try body()
    } catch {
        throw HTTPFailure(error)
    }
}
