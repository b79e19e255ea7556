#if canImport(Glibc)
import Glibc
#endif

/// A parsed `CLAIM_DATABASE_URL`: `postgres[ql]://user[:password]@host[:port][/database][?param=value&…]`, the
/// subset of libpq's connection URI (https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNSTRING) that
/// one function process needs. User, password, database and parameter values are percent-decoded.
///
/// A refusal never quotes the URL: an operator who forgot to percent-encode `@`, `/`, `?` or `#` in the password
/// moves part of it into the host, the path or the query, so any part of the URL may be a piece of the password.
public struct PostgresURL: Sendable, Equatable {
    /// libpq's `sslmode` (https://www.postgresql.org/docs/15/libpq-ssl.html#LIBPQ-SSL-SSLMODE-STATEMENTS).
    public enum SSLMode: String, CaseIterable, Sendable {
        /// Plain TCP only.
        case disable
        /// Plain TCP; TLS (unverified) only if the server refuses a plain connection.
        case allow
        /// TLS (unverified) if the server offers it, else plain: libpq's default.
        case prefer
        /// TLS, certificate not verified (verified like `verify-ca` when `sslrootcert` is given, as libpq does).
        case require
        /// TLS, the certificate chain verified against the trusted CAs.
        case verifyCA = "verify-ca"
        /// TLS, the chain verified and the certificate must name the host.
        case verifyFull = "verify-full"
    }

    public var user: String
    public var password: String?
    /// A name or an address; an IPv6 literal without its brackets.
    public var host: String
    public var port: Int
    public var database: String
    public var sslMode: SSLMode
    /// `sslrootcert`: a CA file to trust for verify-ca / verify-full; nil for SSL_CERT_FILE / SSL_CERT_DIR or the
    /// system's CAs (`sslrootcert=system` says the latter explicitly).
    public var sslRootCert: String?
    /// `connect_timeout` (seconds in the URL): one deadline for TCP connect, TLS and authentication.
    public var connectTimeoutMs: Int
    public var applicationName: String
    /// `options`: command-line options sent to the server at start-up (e.g. `-c search_path=claims`).
    public var options: String?
    /// `require_auth`: the authentication methods the server may use, as libpq 16 reads the parameter.
    public var requireAuth: AuthMethods
    /// `scram_client_key` and `scram_server_key` (libpq 18's names; base64 of 32 bytes each, both or neither): SCRAM
    /// logs in with them instead of the password, without PBKDF2.
    var scramKeys: SCRAMSHA256.Keys?

    static let defaultPort = 5432
    static let defaultConnectTimeoutS = 5
    static let parameters = [
        "sslmode", "sslrootcert", "connect_timeout", "application_name", "options", "require_auth",
        "scram_client_key", "scram_server_key",
    ]
    /// Appended to a refusal that a password with a reserved character would explain.
    static let encodingHint = " (percent-encode @ : / ? # & % and spaces in the user name and password)"

    /// Parses `text`. The failure's reason quotes no part of the URL, because it ends up in the response and the
    /// log, and any part of a mis-encoded URL may hold a piece of the password.
    /// - Throws: `PostgresURL.Invalid` with the reason.
    public init(_ text: String) throws(Invalid) {
        (user, password, host, port, database) = ("", nil, "", PostgresURL.defaultPort, "")
        (sslMode, sslRootCert, connectTimeoutMs) = (.prefer, nil, PostgresURL.defaultConnectTimeoutS * 1000)
        (applicationName, options, requireAuth) = ("leetcode-claim", nil, .all)
        var rest: Substring
        if text.hasPrefix("postgresql://") {
            rest = text.dropFirst("postgresql://".count)
        } else if text.hasPrefix("postgres://") {
            rest = text.dropFirst("postgres://".count)
        } else {
            throw Invalid("it must start with postgres:// or postgresql://")
        }
        guard !text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw Invalid("it contains a space or a control character")
        }
        if rest.contains("#") { throw Invalid("a fragment (#) is not allowed; percent-encode # as %23") }

        // Like libpq, the user part ends at the first @ before any /, and the password at the first : in it.
        if let at = rest.firstIndex(where: { $0 == "@" || $0 == "/" }), rest[at] == "@" {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = try PostgresURL.decode(userInfo[..<colon], what: "the user name")
                password = try PostgresURL.decode(userInfo[userInfo.index(after: colon)...], what: "the password")
            } else {
                user = try PostgresURL.decode(userInfo, what: "the user name")
            }
        }
        // An @ left after the user information is most likely a password's, unencoded: a refusal then says so.
        let spilled = rest.contains("@")
        guard !user.isEmpty else {
            let hint = spilled ? PostgresURL.encodingHint : ""
            throw Invalid("it names no user (postgres://USER:PASSWORD@HOST/DATABASE)" + hint)
        }
        do throws(Invalid) {
            try parseRest(rest)
        } catch {
            throw Invalid(error.reason + (spilled ? PostgresURL.encodingHint : ""))
        }
        if database.isEmpty { database = user }
    }

    /// Host, port, database and parameters: everything after the user information.
    private mutating func parseRest(_ text: Substring) throws(Invalid) {
        var rest = text

        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        rest = rest[authority.endIndex...]
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw Invalid("an IPv6 host lacks its ]") }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            var address = in6_addr()
            guard inet_pton(AF_INET6, host, &address) == 1 else { throw Invalid("the IPv6 host is not an address") }
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw Invalid("unexpected text after the IPv6 host") }
                portText = after.dropFirst()
            }
        } else {
            if authority.contains(",") { throw Invalid("several hosts are not supported; name one") }
            let parts = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            host = String(parts[0])
            portText = parts.count == 2 ? parts[1] : nil
            let allowed = { (c: UInt8) in
                (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x2D
                    || c == 0x2E || c == 0x5F
            }
            guard !host.isEmpty else {
                throw Invalid("it names no host (a Unix-domain socket is not supported: use a TCP host)")
            }
            guard host.utf8.allSatisfy(allowed) else { throw Invalid("the host name has an invalid character") }
        }
        if let portText {
            guard (1...5).contains(portText.count), portText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                let port = Int(portText), (1...65535).contains(port)
            else { throw Invalid("the port must be a number from 1 to 65535") }
            self.port = port
        }

        if rest.hasPrefix("/") {
            let path = rest.dropFirst().prefix { $0 != "?" }
            rest = rest[path.endIndex...]
            if !path.isEmpty { database = try PostgresURL.decode(path, what: "the database name") }
        }

        guard rest.isEmpty || rest.hasPrefix("?") else { throw Invalid("unexpected text after the database name") }
        var seen: [String] = []
        var clientKey: [UInt8]?
        var serverKey: [UInt8]?
        for pair in rest.dropFirst().split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try PostgresURL.decode(parts[0], what: "a parameter name")
            guard PostgresURL.parameters.contains(name) else {
                let supported = PostgresURL.parameters.joined(separator: ", ")
                throw Invalid("it has a parameter this client does not support (supported: \(supported))")
            }
            guard parts.count == 2 else { throw Invalid("parameter \"\(name)\" has no value") }
            guard !seen.contains(name) else { throw Invalid("parameter \"\(name)\" is given twice") }
            seen.append(name)
            let value = try PostgresURL.decode(parts[1], what: "the value of \(name)")
            switch name {
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    let allowed = SSLMode.allCases.map(\.rawValue).joined(separator: ", ")
                    throw Invalid("sslmode must be one of: \(allowed)")
                }
                sslMode = mode
            case "sslrootcert":
                guard !value.isEmpty else { throw Invalid("sslrootcert is empty") }
                sslRootCert = value == "system" ? nil : value
            case "connect_timeout":
                guard value.count <= 3, let seconds = Int(value), (1...600).contains(seconds) else {
                    throw Invalid("connect_timeout must be a number of seconds from 1 to 600")
                }
                connectTimeoutMs = seconds * 1000
            case "application_name":
                applicationName = value
            case "require_auth":
                requireAuth = try AuthMethods(requirement: value)
            case "scram_client_key", "scram_server_key":
                guard let key = Base64.decode(value[...]), key.count == 32 else {
                    throw Invalid("\(name) must be a 32-byte key in base64")
                }
                if name == "scram_client_key" { clientKey = key } else { serverKey = key }
            default:
                options = value
            }
        }
        switch (clientKey, serverKey) {
        case (let client?, let server?): scramKeys = SCRAMSHA256.Keys(client: client, server: server)
        case (nil, nil): break
        default: throw Invalid("scram_client_key and scram_server_key go together: give both or neither")
        }
    }

    /// The URL without its user information (user name and password), for `migrate`'s answer: nothing from the
    /// user information ever reaches stdout.
    public var redacted: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(name):\(port)/\(PostgresURL.encode(database))?sslmode=\(sslMode.rawValue)"
    }

    /// True for an IPv4 or IPv6 address (no SNI, and verify-full checks an IP SAN).
    var isIPLiteral: Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// The authentication methods a server may use (`require_auth`), a set of flags.
    public struct AuthMethods: OptionSet, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        public static let password = AuthMethods(rawValue: 1)
        public static let md5 = AuthMethods(rawValue: 2)
        public static let gss = AuthMethods(rawValue: 4)
        public static let sspi = AuthMethods(rawValue: 8)
        public static let scramSHA256 = AuthMethods(rawValue: 16)
        /// The server lets us in without authenticating (`trust`).
        public static let none = AuthMethods(rawValue: 32)
        public static let all: AuthMethods = [.password, .md5, .gss, .sspi, .scramSHA256, .none]

        static let names: [(String, AuthMethods)] = [
            ("password", .password), ("md5", .md5), ("gss", .gss), ("sspi", .sspi), ("scram-sha-256", .scramSHA256),
            ("none", .none),
        ]

        /// libpq 16's `require_auth` (https://www.postgresql.org/docs/16/libpq-connect.html#LIBPQ-CONNECT-REQUIRE-AUTH):
        /// a comma list of methods of which the server must use one (`none`: it may skip authentication), or a
        /// list of `!method`s it must not use (then skipping authentication is allowed unless `!none`). The two
        /// forms do not mix, and no method is named twice. Empty: any method, as when the parameter is absent.
        init(requirement: String) throws(Invalid) {
            guard !requirement.isEmpty else {
                self = .all
                return
            }
            var listed: AuthMethods = []
            var negated: Bool?
            for item in requirement.split(separator: ",", omittingEmptySubsequences: false) {
                let isNegated = item.hasPrefix("!")
                guard let method = AuthMethods.names.first(where: { $0.0 == item.dropFirst(isNegated ? 1 : 0) })?.1
                else {
                    let known = AuthMethods.names.map(\.0).joined(separator: ", ")
                    throw Invalid("require_auth lists a method that is not one of: \(known) (each may start with !)")
                }
                guard negated == nil || negated == isNegated else {
                    throw Invalid("require_auth mixes methods with and without !")
                }
                guard !listed.contains(method) else { throw Invalid("require_auth names a method twice") }
                negated = isNegated
                listed.insert(method)
            }
            self = negated == true ? AuthMethods.all.subtracting(listed) : listed
        }
    }

    /// Why a URL was refused; never includes the password.
    public struct Invalid: Error, Equatable {
        public var reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// Percent-decodes `part`; the result must be UTF-8 without NUL (libpq refuses %00 as well).
    static func decode(_ part: Substring, what: String) throws(Invalid) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(part.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw Invalid("\(what) has an invalid percent-escape")
            }
            let decoded = high << 4 | low
            guard decoded != 0 else { throw Invalid("\(what) contains %00") }
            bytes.append(decoded)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw Invalid("\(what) is not UTF-8") }
        return text
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters.
    static func encode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for c in text.utf8 {
            let unreserved =
                (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x2D
                || c == 0x2E || c == 0x5F || c == 0x7E
            if unreserved {
                out.append(c)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(c >> 4)], hex[Int(c & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
