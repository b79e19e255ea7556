import Glibc

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
