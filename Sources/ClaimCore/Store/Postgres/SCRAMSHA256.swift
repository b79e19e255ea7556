import COpenSSL

/// The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it
/// (https://www.postgresql.org/docs/15/sasl-authentication.html): no channel binding (gs2 header "n,,"), and the
/// user name left empty because the start-up message already carries it.
struct SCRAMSHA256 {
    /// A malformed server message or a server signature that does not match: either way, not the real server.
    struct Failure: Error, Equatable {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// The largest iteration count accepted: PostgreSQL's default is 4096, and PBKDF2 cannot be interrupted by the
    /// request's deadline, so a hostile server must not make us spin for seconds.
    static let maxIterations = 600_000

    /// A role's ClientKey and ServerKey (RFC 5802 §3), derived from its password, salt and iteration count: what a
    /// login needs of the password. Given instead of the password (`scram_client_key`, `scram_server_key` in the
    /// URL, libpq 18's names), they spare each login the PBKDF2.
    struct Keys: Sendable, Equatable {
        var client: [UInt8]
        var server: [UInt8]
    }

    private enum Secret {
        case password([UInt8])
        case keys(Keys)
    }

    let user: String
    private let secret: Secret
    let clientNonce: String
    /// The keys this login used, given or derived (`leetcode-claim scram-keys` prints them once the server has
    /// proven that it knows them too).
    private(set) var keys: Keys?
    private var authMessage: [UInt8] = []
    private var expectedServerSignature: [UInt8] = []

    /// - Parameters:
    ///   - password: used as given; PostgreSQL applies SASLprep, which changes nothing for ASCII passwords.
    ///   - clientNonce: printable ASCII without ","; `newNonce()` in production, the RFC's in tests.
    init(user: String = "", password: String, clientNonce: String) {
        self.user = user
        secret = .password(Array(password.utf8))
        self.clientNonce = clientNonce
    }

    /// With the keys derived beforehand: the server's salt and iteration count are then not used, and a key that
    /// was derived with others (the password changed since) is refused by the server like a wrong password.
    init(user: String = "", keys: Keys, clientNonce: String) {
        self.user = user
        secret = .keys(keys)
        self.clientNonce = clientNonce
    }

    /// 18 bytes from the kernel's CSPRNG, base64: what libpq sends. `getrandom` rather than `RAND_bytes`, whose
    /// DRBG set-up costs ~6.7 M instructions in a process that otherwise needs nothing of OpenSSL's providers.
    static func newNonce() -> String? {
        var random = [UInt8](repeating: 0, count: 18)
        guard copenssl_getrandom(&random, random.count) == 0 else { return nil }
        return Base64.encode(random)
    }

    private var clientFirstBare: String {
        let name = user.replacingOccurrences("=", "=3D").replacingOccurrences(",", "=2C")
        return "n=\(name),r=\(clientNonce)"
    }

    /// The SASLInitialResponse payload.
    var clientFirstMessage: String { "n,," + clientFirstBare }

    /// Answers the server-first message (`r=…,s=…,i=…`) with the client-final message carrying the proof.
    /// - Throws: `Failure` when the message is malformed, the nonce is not ours, or the iteration count is absurd.
    mutating func clientFinalMessage(serverFirst: String) throws(Failure) -> String {
        var nonce: Substring?
        var salt: [UInt8]?
        var iterations: Int?
        for attribute in serverFirst.split(separator: ",", omittingEmptySubsequences: false) {
            guard attribute.count >= 2, attribute.dropFirst().first == "=" else {
                throw Failure("malformed server-first-message")
            }
            let value = attribute.dropFirst(2)
            switch attribute.first {
            case "r": nonce = value
            case "s": salt = Base64.decode(value)
            case "i": iterations = value.count <= 9 ? Int(value) : nil
            case "m": throw Failure("server requires an unsupported SCRAM extension")
            default: break  // RFC 5802 §5.1: ignore unknown attributes
            }
        }
        guard let nonce, nonce.hasPrefix(clientNonce), nonce.count > clientNonce.count else {
            throw Failure("server nonce does not extend the client nonce")
        }
        guard let salt, !salt.isEmpty else { throw Failure("missing or invalid salt") }
        guard let iterations, (1...SCRAMSHA256.maxIterations).contains(iterations) else {
            throw Failure("iteration count missing or over \(SCRAMSHA256.maxIterations)")
        }

        let keys: Keys
        switch secret {
        case .keys(let given): keys = given
        case .password(let password):
            guard let derived = SCRAMSHA256.keys(password: password, salt: salt, iterations: iterations) else {
                throw Failure("OpenSSL could not compute the SCRAM keys")
            }
            keys = derived
        }
        self.keys = keys
        let (clientKey, serverKey) = (keys.client, keys.server)
        guard let storedKey = SCRAMSHA256.sha256(clientKey) else {
            throw Failure("OpenSSL could not compute the SCRAM keys")
        }

        // "biws" is base64("n,,"), the gs2 header: no channel binding.
        let withoutProof = "c=biws,r=\(nonce)"
        authMessage = Array("\(clientFirstBare),\(serverFirst),\(withoutProof)".utf8)
        guard let clientSignature = hmacSHA256(key: storedKey, message: authMessage[...]),
            let serverSignature = hmacSHA256(key: serverKey, message: authMessage[...])
        else { throw Failure("OpenSSL could not compute the SCRAM signatures") }
        expectedServerSignature = serverSignature
        let proof = zip(clientKey, clientSignature).map { $0 ^ $1 }
        return "\(withoutProof),p=\(Base64.encode(proof))"
    }

    /// Checks the server-final message (`v=…`): proof that the server knows the password too.
    /// - Throws: `Failure` on an error attribute, a malformed message or a wrong signature.
    func verify(serverFinal: String) throws(Failure) {
        if serverFinal.hasPrefix("e=") { throw Failure("server reported \(serverFinal.dropFirst(2).prefix(60))") }
        guard serverFinal.hasPrefix("v="),
            let signature = Base64.decode(serverFinal.dropFirst(2).prefix { $0 != "," })
        else { throw Failure("malformed server-final-message") }
        guard !expectedServerSignature.isEmpty, signature == expectedServerSignature else {
            throw Failure("the server's signature does not match: it does not know the password")
        }
    }

    /// ClientKey and ServerKey from the password: HMAC(Hi(password, salt, i), "Client Key" / "Server Key").
    static func keys(password: [UInt8], salt: [UInt8], iterations: Int) -> Keys? {
        guard let salted = pbkdf2(password: password, salt: salt, iterations: iterations),
            let client = hmacSHA256(key: salted, message: Array("Client Key".utf8)[...]),
            let server = hmacSHA256(key: salted, message: Array("Server Key".utf8)[...])
        else { return nil }
        return Keys(client: client, server: server)
    }

    /// Hi(password, salt, i) of RFC 5802: PBKDF2-HMAC-SHA-256, one 32-byte block.
    static func pbkdf2(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8]? {
        _ = OpenSSLSetup.cpu
        var out = [UInt8](repeating: 0, count: 32)
        copenssl_pbkdf2_hmac_sha256(password, password.count, salt, salt.count, UInt32(iterations), &out)
        return out
    }

    static func sha256(_ data: [UInt8]) -> [UInt8]? {
        _ = OpenSSLSetup.cpu
        var out = [UInt8](repeating: 0, count: 32)
        copenssl_sha256(data, data.count, &out)
        return out
    }

    /// A one-shot EVP digest (https://docs.openssl.org/3.0/man3/EVP_DigestInit/).
    static func digest(_ data: [UInt8], _ type: OpaquePointer?) -> [UInt8]? {
        _ = OpenSSLSetup.ready
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_Digest(data, data.count, &out, &length, type, nil) == 1 else { return nil }
        return Array(out.prefix(Int(length)))
    }
}

/// Standard base64 with padding (RFC 4648 §4), as SCRAM uses it.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var chunk: UInt32 = 0
            for j in 0..<3 { chunk = chunk << 8 | UInt32(j < n ? bytes[i + j] : 0) }
            for j in 0..<4 {
                out.append(j <= n ? alphabet[Int((chunk >> UInt32(18 - 6 * j)) & 63)] : UInt8(ascii: "="))
            }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The decoded bytes, or nil for anything but padded base64 of a length divisible by 4.
    static func decode(_ text: Substring) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        var padding = 0
        for (i, c) in chars.enumerated() {
            if c == UInt8(ascii: "=") {
                guard i >= chars.count - 2 else { return nil }
                padding += 1
                continue
            }
            guard padding == 0, let v = alphabet.firstIndex(of: c) else { return nil }
            buffer = buffer << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
                buffer &= (1 << UInt32(bits)) - 1
            }
        }
        return out
    }
}

extension String {
    fileprivate func replacingOccurrences(_ target: Character, _ replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
