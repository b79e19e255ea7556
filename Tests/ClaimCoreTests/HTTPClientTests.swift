import Foundation
import Testing

@testable import ClaimCore

/// Tests/fake_leetcode, found from this file.
let fakeLeetCodeDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("fake_leetcode")

struct HelperFailed: Error, CustomStringConvertible {
    var description: String
}

/// Runs a Python helper from Tests/fake_leetcode until it prints its first stdout line (JSON with its ports).
/// Its standard input is a pipe that this process holds, so `--watch-stdin` ends it if the tests die.
final class PythonHelper {
    let process = Process()
    let ports: [String: Any]
    private let input = Pipe()

    init(_ script: String, _ arguments: [String], log: URL) throws {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            ["python3", fakeLeetCodeDirectory.appendingPathComponent(script).path, "--watch-stdin"]
            + arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        var line = Data()
        while !line.contains(0x0A) {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty {
                let stderr = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                throw HelperFailed(description: "\(script) exited before printing its ports: \(stderr)")
            }
            line += data
        }
        ports = try JSONSerialization.jsonObject(with: line) as? [String: Any] ?? [:]
    }

    func port(_ key: String = "port") -> Int { ports[key] as? Int ?? 0 }

    /// Ends the helper; also keeps it alive until called (ARC may release a local after its last use).
    func stop() {
        // SIGKILL: a child of Foundation.Process inherits the spawning thread's signal mask, which may block SIGTERM.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// A fake LeetCode (Tests/fake_leetcode/server.py) with certificates made for this test only, in its own folder.
final class FakeLeetCode {
    let directory: URL
    let profiles: URL
    let server: PythonHelper

    /// `profiles` is written as the server's profiles file (username -> fields).
    init(profiles: [String: [String: Any]] = [:], slowSeconds: Double = 10) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fake-leetcode-\(UUID())")
        self.profiles = directory.appendingPathComponent("profiles.json")
        let certs = Process()
        certs.executableURL = URL(fileURLWithPath: "/bin/sh")
        certs.arguments = [fakeLeetCodeDirectory.appendingPathComponent("make_certs.sh").path, directory.path]
        try certs.run()
        certs.waitUntilExit()
        guard certs.terminationStatus == 0 else { throw HelperFailed(description: "make_certs.sh failed") }
        try Self.write(profiles, to: self.profiles)
        let dir = directory.path
        server = try PythonHelper(
            "server.py",
            [
                "--profiles", self.profiles.path, "--cert", "\(dir)/server.pem", "--key", "\(dir)/server.key",
                "--http", "--extra-https", "\(dir)/untrusted.pem", "\(dir)/untrusted.key",
                "--extra-https", "\(dir)/wrong-host.pem", "\(dir)/wrong-host.key", "--slow-seconds", "\(slowSeconds)",
            ], log: directory.appendingPathComponent("server.log"))
    }

    /// Stops the server and removes the folder; call it in a `defer` so the server lives as long as the test.
    func stop() {
        server.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }

    static func write(_ profiles: [String: [String: Any]], to file: URL) throws {
        try JSONSerialization.data(withJSONObject: profiles).write(to: file, options: .atomic)
    }

    /// Replaces the profiles file; the server re-reads it on every request.
    func setProfiles(_ profiles: [String: [String: Any]]) throws { try Self.write(profiles, to: self.profiles) }

    var httpsURL: String { "https://localhost:\(server.port("https_port"))/graphql" }
    var httpURL: String { "http://127.0.0.1:\(server.port("http_port"))/graphql" }
    /// Serves a localhost certificate signed by a CA nobody trusts.
    var untrustedURL: String { "https://localhost:\(extraPort(0))/graphql" }
    /// Serves a certificate for wrong.example, signed by the trusted test CA.
    var wrongHostURL: String { "https://localhost:\(extraPort(1))/graphql" }
    var environment: HTTPClient.Environment { .init(sslCertFile: directory.appendingPathComponent("ca.pem").path) }

    private func extraPort(_ index: Int) -> Int { (server.ports["extra_https_ports"] as? [Int])?[index] ?? 0 }
}

/// A loopback TCP port with nothing listening (bound, then closed).
func closedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    return withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
            _ = bind(fd, raw, length)
            _ = getsockname(fd, raw, &length)
            return Int(UInt16(bigEndian: pointer.pointee.sin_port))
        }
    }
}

/// A GraphQL body asking for `username`, as the fake server expects it.
func graphQLBody(_ username: String) -> [UInt8] {
    Array(#"{"query":"query { matchedUser }","variables":{"username":"\#(username)"}}"#.utf8)
}

let referer = [("Referer", "https://leetcode.com"), ("Content-Type", "application/json")]

func post(
    _ url: String, _ username: String, timeoutMs: Int = 5000, maxResponseBytes: Int = 1 << 20,
    environment: HTTPClient.Environment, headers: [(String, String)] = referer
) throws(HTTPFailure) -> HTTPResponse {
    try HTTPClient.post(
        url: url, headers: headers, body: graphQLBody(username), timeoutMs: timeoutMs,
        maxResponseBytes: maxResponseBytes, environment: environment)
}

func aboutMe(_ response: HTTPResponse) throws -> String? {
    try JSONParser.parse(response.body)["data"]?["matchedUser"]?["profile"]?["aboutMe"]?.stringValue
}

@Suite struct HTTPClientURLTests {
    @Test(arguments: [
        ("https://leetcode.com/graphql", true, "leetcode.com", 443, "/graphql", "leetcode.com"),
        ("HTTPS://LeetCode.com", true, "leetcode.com", 443, "/", "leetcode.com"),
        (
            "https://leetcode.com:8443/graphql/?a=1#frag", true, "leetcode.com", 8443, "/graphql/?a=1",
            "leetcode.com:8443"
        ),
        ("http://127.0.0.1:8080?x", false, "127.0.0.1", 8080, "/?x", "127.0.0.1:8080"),
        ("http://[::1]:9/graphql", false, "::1", 9, "/graphql", "[::1]:9"),
        ("https://[2001:DB8::1]/", true, "2001:db8::1", 443, "/", "[2001:db8::1]"),
    ])
    func parses(url: String, tls: Bool, host: String, port: Int, path: String, authority: String) throws {
        let parts = try URLParts(url, what: .invalidURL)
        #expect(parts.tls == tls)
        #expect(parts.host == host)
        #expect(parts.port == port)
        #expect(parts.path == path)
        #expect(parts.authority == authority)
    }

    @Test(arguments: [
        "", "leetcode.com/graphql", "ftp://leetcode.com/", "https://", "https://:443/", "https://a b/",
        "https://user:pw@leetcode.com/", "https://leetcode.com:0/", "https://leetcode.com:65536/",
        "https://leetcode.com:12a/", "https://[::1/", "https://[zz]/", "https://[::1]x/", "https://le\u{e9}t.com/",
        "https://a:1:2/", "https://leetcode.com/\r\nX: y",
    ])
    func rejects(url: String) {
        let error = #expect(throws: HTTPFailure.self) { _ = try URLParts(url, what: .invalidURL) }
        #expect(error?.kind == .invalidURL)
    }

    @Test(arguments: [
        ("localhost", true), ("127.0.0.1", true), ("127.255.0.9", true), ("[::1]", true), ("[0:0:0:0:0:0:0:1]", true),
        ("128.0.0.1", false), ("10.0.0.1", false), ("leetcode.com", false), ("localhost.evil.com", false),
        ("[::2]", false), ("127.1", false),
    ])
    func loopback(host: String, expected: Bool) throws {
        #expect(try URLParts("http://\(host)/", what: .invalidURL).isLoopback == expected)
    }

    /// Rejected before any socket is opened: no traffic leaves the machine.
    @Test(arguments: ["http://leetcode.com/graphql", "http://10.0.0.1:8080/graphql", "http://127.1/"])
    func plainHTTPToNonLoopbackIsRefused(url: String) {
        let error = #expect(throws: HTTPFailure.self) {
            _ = try post(url, "alice", environment: .init())
        }
        #expect(error?.kind == .invalidURL)
        #expect(error?.detail.contains("loopback") == true)
    }

    /// The production path: Config reads the variables (upper case first, empty = unset) and checks them.
    @Test func environmentFromConfig() throws {
        let variables = [
            "CLAIM_AUTH": "trusted", "SSL_CERT_FILE": "/ca.pem", "SSL_CERT_DIR": "", "https_proxy": "http://p:3128",
            "NO_PROXY": "a,b", "no_proxy": "c",
        ]
        let environment = try Config.load { variables[$0] }.http
        #expect(environment.sslCertFile == "/ca.pem")
        #expect(environment.sslCertDir == nil)
        #expect(environment.httpsProxy == "http://p:3128")
        #expect(environment.noProxy == "a,b")
    }

    @Test(arguments: [
        ("LEETCODE_GRAPHQL_URL", "ftp://leetcode.com/graphql", "LEETCODE_GRAPHQL_URL"),
        ("LEETCODE_GRAPHQL_URL", "http://leetcode.com/graphql", "LEETCODE_GRAPHQL_URL"),
        ("HTTPS_PROXY", "https://proxy:3128", "HTTPS_PROXY"),
        ("HTTPS_PROXY", "http://bob:s3cretpw@proxy:3128", "HTTPS_PROXY"),
    ])
    func badNetworkSettingsAreMisconfiguredAtLoad(name: String, value: String, named: String) {
        let variables = ["CLAIM_AUTH": "trusted", name: value]
        #expect {
            _ = try Config.load { variables[$0] }
        } throws: { error in
            guard let error = error as? ClaimError else { return false }
            return error.code == .misconfigured && error.message.contains(named)
                && !(error.detail ?? "").contains("s3cretpw") && !error.message.contains("s3cretpw")
        }
    }
}

@Suite struct HTTPClientExchangeTests {
    @Test func httpsGetsTheProfile() throws {
        let fake = try FakeLeetCode(profiles: ["alice": ["aboutMe": "LCC-1234"]])
        defer { fake.stop() }
        let response = try post(fake.httpsURL, "alice", environment: fake.environment)
        #expect(response.status == 200)
        #expect(response.header("content-type") == "application/json")
        #expect(try aboutMe(response) == "LCC-1234")
        // An IP literal is checked against the certificate's IP SAN.
        let byAddress = fake.httpsURL.replacingOccurrences(of: "localhost", with: "127.0.0.1")
        #expect(try post(byAddress, "alice", environment: fake.environment).status == 200)
    }

    @Test func plainHTTPToLoopbackWorks() throws {
        let fake = try FakeLeetCode(profiles: ["alice": ["aboutMe": "over http"]])
        defer { fake.stop() }
        #expect(try aboutMe(post(fake.httpURL, "alice", environment: .init())) == "over http")
        let byName = fake.httpURL.replacingOccurrences(of: "127.0.0.1", with: "localhost")
        #expect(try aboutMe(post(byName, "alice", environment: .init())) == "over http")
    }

    @Test func withoutRefererTheFakeAnswersLikeLeetCode() throws {
        let fake = try FakeLeetCode()
        defer { fake.stop() }
        let response = try post(fake.httpsURL, "alice", environment: fake.environment, headers: [])
        #expect(response.status == 403)
        #expect(String(decoding: response.body, as: UTF8.self) == "CSRF verification failed. Request aborted.")
    }

    @Test(arguments: ["chunked", "close-delimited"])
    func bodyFramings(username: String) throws {
        let fake = try FakeLeetCode()
        defer { fake.stop() }
        let response = try post(fake.httpsURL, username, environment: fake.environment)
        #expect(try aboutMe(response) == (username == "chunked" ? "sent in chunks" : "ended by close"))
    }

    @Test(arguments: ["huge", "huge-chunked", "huge-close"])
    func responseSizeIsCapped(username: String) throws {
        let fake = try FakeLeetCode()
        defer { fake.stop() }
        let error = #expect(throws: HTTPFailure.self) {
            _ = try post(fake.httpsURL, username, environment: fake.environment)
        }
        #expect(error?.kind == .tooLarge)
        // The same bodies pass under a larger cap, so the cap is what failed.
        #expect(
            try post(fake.httpsURL, username, maxResponseBytes: 2 << 20, environment: fake.environment).status == 200)
    }

    /// One deadline covers the whole exchange, including a body that stalls after the headers.
    @Test(arguments: ["slow", "slow-body"])
    func deadline(username: String) throws {
        let fake = try FakeLeetCode(slowSeconds: 5)
        defer { fake.stop() }
        let start = ContinuousClock.now
        let error = #expect(throws: HTTPFailure.self) {
            _ = try post(fake.httpsURL, username, timeoutMs: 300, environment: fake.environment)
        }
        #expect(error?.kind == .timeout)
        #expect(ContinuousClock.now - start < .seconds(4), "returned before the server's 5 s answer")
    }

    @Test func untrustedCertificateIsRefused() throws {
        let fake = try FakeLeetCode()
        defer { fake.stop() }
        let error = #expect(throws: HTTPFailure.self) {
            _ = try post(fake.untrustedURL, "alice", environment: fake.environment)
        }
        #expect(error?.kind == .tls)
        #expect(error?.detail.contains("local issuer") == true, "\(String(describing: error))")
    }

    @Test func systemTrustStoreDoesNotTrustTheTestCA() throws {
        let fake = try FakeLeetCode()
        defer { fake.stop() }
        let error = #expect(throws: HTTPFailure.self) { _ = try post(fake.httpsURL, "alice", environment: .init()) }
        #expect(error?.kind == .tls)
        // ... and SSL_CERT_DIR alone is honoured too (OpenSSL looks up <subject hash>.0 there).
        let hashed = try FakeLeetCode()
        defer { hashed.stop() }
        let rehash = Process()
        rehash.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        rehash.arguments = ["openssl", "rehash", hashed.directory.path]
        try rehash.run()
        rehash.waitUntilExit()
        let response = try post(hashed.httpsURL, "x", environment: .init(sslCertDir: hashed.directory.path))
        #expect(response.status == 200)
    }

    @Test(arguments: ["localhost", "127.0.0.1"])
    func wrongHostNameIsRefused(host: String) throws {
        let fake = try FakeLeetCode()
        defer { fake.stop() }
        let url = fake.wrongHostURL.replacingOccurrences(of: "localhost", with: host)
        let error = #expect(throws: HTTPFailure.self) { _ = try post(url, "alice", environment: fake.environment) }
        #expect(error?.kind == .tls)
        #expect(error?.detail.contains("mismatch") == true, "\(String(describing: error))")
    }

    @Test func contextIsMadeOnlyOnceConnected() {
        let error = #expect(throws: HTTPFailure.self) {
            _ = try post(
                "https://127.0.0.1:\(closedPort())/", "alice",
                environment: .init(sslCertFile: "/nonexistent/ca.pem"))
        }
        // Connecting fails first here: the context is only made once a TLS connection is up.
        #expect(error?.kind == .connect)
    }

    @Test func missingCAFileIsASetupErrorOnceConnected() throws {
        let fake = try FakeLeetCode()
        defer { fake.stop() }
        let error = #expect(throws: HTTPFailure.self) {
            _ = try post(fake.httpsURL, "alice", environment: .init(sslCertFile: "/nonexistent/ca.pem"))
        }
        #expect(error?.kind == .tlsSetup)
    }

    @Test(arguments: ["https", "http"])
    func connectionRefused(scheme: String) {
        let error = #expect(throws: HTTPFailure.self) {
            _ = try post("\(scheme)://localhost:\(closedPort())/graphql", "alice", environment: .init())
        }
        #expect(error?.kind == .connect)
        #expect(error?.detail.contains("refused") == true, "\(String(describing: error))")
    }

    @Test func connectThroughProxy() throws {
        let fake = try FakeLeetCode(profiles: ["alice": ["aboutMe": "via proxy"]])
        defer { fake.stop() }
        let log = fake.directory.appendingPathComponent("proxy-connects.log")
        let proxy = try PythonHelper(
            "proxy.py", ["--log", log.path], log: fake.directory.appendingPathComponent("proxy.log"))
        defer { proxy.stop() }
        var environment = fake.environment
        environment.httpsProxy = "http://127.0.0.1:\(proxy.port())"
        #expect(try aboutMe(post(fake.httpsURL, "alice", environment: environment)) == "via proxy")
        environment.httpsProxy = "127.0.0.1:\(proxy.port())"  // the scheme is optional, as with curl
        #expect(try post(fake.httpsURL, "alice", environment: environment).status == 200)
        let port = fake.server.port("https_port")
        #expect(
            try String(contentsOf: log, encoding: .utf8) == "CONNECT localhost:\(port)\nCONNECT localhost:\(port)\n")
        // TLS is still end to end through the tunnel: an untrusted certificate is still refused.
        let error = #expect(throws: HTTPFailure.self) { _ = try post(fake.untrustedURL, "a", environment: environment) }
        #expect(error?.kind == .tls)
        // The proxy refuses CONNECT to anything but loopback: we never resolve or reach the target ourselves.
        let refused = #expect(throws: HTTPFailure.self) {
            _ = try post("https://leetcode.com/graphql", "a", environment: environment)
        }
        #expect(refused?.kind == .proxy)
        #expect(refused?.detail.contains("403") == true)
    }

    @Test func proxyIsUsedOnlyWhenNoProxyDoesNotMatch() throws {
        let fake = try FakeLeetCode()
        defer { fake.stop() }
        var environment = fake.environment
        environment.httpsProxy = "http://127.0.0.1:\(closedPort())"
        let error = #expect(throws: HTTPFailure.self) { _ = try post(fake.httpsURL, "a", environment: environment) }
        #expect(error?.kind == .connect, "the dead proxy was tried")
        for noProxy in ["localhost", "example.com, .LOCALHOST", "*", "127.0.0.1,localhost:1234,localhost"] {
            environment.noProxy = noProxy
            #expect(try post(fake.httpsURL, "a", environment: environment).status == 200, "NO_PROXY=\(noProxy)")
        }
        environment.noProxy = "otherhost,calhost"
        #expect(throws: HTTPFailure.self) { _ = try post(fake.httpsURL, "a", environment: environment) }
        // Plain http (loopback only) never goes through HTTPS_PROXY.
        environment.noProxy = nil
        #expect(try post(fake.httpURL, "a", environment: environment).status == 200)
    }

    @Test(arguments: ["https://127.0.0.1:3128", "socks5://127.0.0.1:1080", "http://u:p@127.0.0.1:3128", "http://"])
    func unusableProxySetting(proxy: String) {
        let error = #expect(throws: HTTPFailure.self) {
            _ = try post("https://leetcode.com/graphql", "a", environment: .init(httpsProxy: proxy))
        }
        #expect(error?.kind == .invalidProxy)
    }
}
