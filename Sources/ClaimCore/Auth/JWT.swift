import COpenSSL

/// Verifies HS256 JSON Web Tokens (RFC 7519) as Supabase Auth issues them, and returns the caller's `sub`.
///
/// Every rejection is `.unauthenticated` with a message that says why and never repeats any part of the token.
public struct JWTVerifier: Sendable {
    /// Longest token accepted, in bytes; real Supabase access tokens are well under 2 KiB.
    static let maxTokenBytes = 8192
    /// Shortest secret accepted: HS256 needs a key at least as long as its 32-byte output (RFC 7518 §3.2).
    static let minSecretBytes = 32

    private let secret: [UInt8]
    private let audience: String
    private let issuer: String?
    private let leewaySeconds: Int

    /// A verifier for tokens signed with `secret` that name `audience` and, when it is not nil, `issuer`.
    /// - Throws: `.misconfigured` when the secret is shorter than 32 bytes or the leeway is negative.
    public init(secret: [UInt8], audience: String, issuer: String?, leewaySeconds: Int) throws(ClaimError) {
        guard secret.count >= JWTVerifier.minSecretBytes else {
            throw ClaimError(.misconfigured, "CLAIM_JWT_SECRET must be at least \(JWTVerifier.minSecretBytes) bytes")
        }
        guard leewaySeconds >= 0 else {
            throw ClaimError(.misconfigured, "CLAIM_JWT_LEEWAY_S must not be negative")
        }
        self.secret = secret
        self.audience = audience
        self.issuer = issuer
        self.leewaySeconds = leewaySeconds
    }

    /// Checks `token` at Unix time `now` and returns its `sub` claim.
    /// - Throws: `.unauthenticated` naming the first problem found.
    public func verify(_ token: String, now: Int64) throws(ClaimError) -> String {
        let bytes = Array(token.utf8)
        guard !bytes.isEmpty else { throw reject("bearer token is missing") }
        guard bytes.count <= JWTVerifier.maxTokenBytes else {
            throw reject("bearer token is longer than \(JWTVerifier.maxTokenBytes) bytes")
        }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw reject("bearer token is not a JWT (expected three dot-separated parts)") }

        // The header is read before the signature is checked, but only to refuse anything that is not HS256:
        // trusting its alg is the classic "alg: none" / algorithm-confusion hole (RFC 8725 §2.1, §3.1).
        guard let headerBytes = Base64URL.decode(parts[0]) else { throw reject("JWT header is not valid base64url") }
        guard let header = try? JSONParser.parse(headerBytes), case .object = header else {
            throw reject("JWT header is not a JSON object")
        }
        guard let alg = header["alg"] else { throw reject("JWT header has no alg") }
        guard alg.stringValue == "HS256" else { throw reject("JWT alg is not supported (only HS256 is accepted)") }
        // We understand no extension, so a token that marks one critical must be refused (RFC 7515 §4.1.11).
        guard header["crit"] == nil else { throw reject("JWT header has crit, which is not supported") }
        // typ is optional (RFC 7519 §5.1); when present it must say JWT, so another HS256-signed object sharing the
        // secret (RFC 8725 §3.11 "explicit typing") cannot pass as an access token.
        if let typ = header["typ"] {
            guard let value = typ.stringValue, value.lowercased() == "jwt" else { throw reject("JWT typ is not JWT") }
        }

        guard !parts[2].isEmpty else { throw reject("JWT signature is missing") }
        guard let signature = Base64URL.decode(parts[2]) else { throw reject("JWT signature is not valid base64url") }
        let signingInput = bytes[..<(parts[1].endIndex)]
        guard let expected = hmacSHA256(key: secret, message: signingInput) else {
            throw ClaimError(.internal, "could not compute HMAC-SHA256")
        }
        // The length is public (always 32 for HS256); only the comparison of the bytes must be constant-time.
        guard signature.count == expected.count,
            CRYPTO_memcmp(signature, expected, expected.count) == 0
        else { throw reject("JWT signature does not verify") }

        // From here on the payload comes from the secret's holder.
        guard let payloadBytes = Base64URL.decode(parts[1]) else { throw reject("JWT payload is not valid base64url") }
        let claims: JSON
        do { claims = try JSONParser.parse(payloadBytes) } catch { throw reject("JWT payload is not valid JSON") }
        guard case .object = claims else { throw reject("JWT payload is not a JSON object") }

        let leeway = Double(leewaySeconds)
        let nowSeconds = Double(now)
        guard let expClaim = claims["exp"] else { throw reject("JWT has no exp claim") }
        let exp = try numericDate(expClaim, name: "exp")
        guard nowSeconds <= exp + leeway else { throw reject("JWT has expired") }
        if let nbfClaim = claims["nbf"] {
            let nbf = try numericDate(nbfClaim, name: "nbf")
            guard nbf <= nowSeconds + leeway else { throw reject("JWT is not valid yet (nbf is in the future)") }
        }
        if let iatClaim = claims["iat"] {
            let iat = try numericDate(iatClaim, name: "iat")
            guard iat <= nowSeconds + leeway else { throw reject("JWT was issued in the future (iat)") }
        }

        switch claims["aud"] {
        case nil:
            throw reject("JWT has no aud claim")
        case .string(let aud)?:
            guard aud == audience else { throw reject("JWT aud does not include \"\(audience)\"") }
        case .array(let list)?:
            guard list.allSatisfy({ $0.stringValue != nil }) else {
                throw reject("JWT aud claim is not a string or an array of strings")
            }
            guard list.contains(.string(audience)) else { throw reject("JWT aud does not include \"\(audience)\"") }
        default:
            throw reject("JWT aud claim is not a string or an array of strings")
        }

        if let issuer {
            guard let iss = claims["iss"] else { throw reject("JWT has no iss claim") }
            guard iss.stringValue == issuer else { throw reject("JWT iss is not the configured issuer") }
        }

        guard let subClaim = claims["sub"] else { throw reject("JWT has no sub claim") }
        guard let sub = subClaim.stringValue else { throw reject("JWT sub claim is not a string") }
        guard Request.isValidUserID(sub) else {
            throw reject("JWT sub is not a valid user id (1-128 printable ASCII characters, no spaces)")
        }
        return sub
    }

    /// Latest NumericDate accepted: 9999-12-31T23:59:59Z. Beyond it a value is a bug or an attack, and keeping
    /// values this small keeps them exact in a Double.
    static let maxNumericDate: Double = 253_402_300_799

    /// A NumericDate (RFC 7519 §2): a JSON number of seconds, integer or decimal.
    private func numericDate(_ value: JSON, name: String) throws(ClaimError) -> Double {
        guard case .number(let text) = value else { throw reject("JWT \(name) claim is not a number") }
        guard let seconds = Double(text), seconds >= 0, seconds <= JWTVerifier.maxNumericDate else {
            throw reject("JWT \(name) claim is out of range (not a time between 1970 and 9999)")
        }
        return seconds
    }

    private func reject(_ message: String) -> ClaimError {
        ClaimError(.unauthenticated, message)
    }
}

/// HMAC-SHA256 on libcrypto's low-level SHA-256, which needs no provider set-up (see COpenSSL's shim.h); nil never
/// happens, but callers keep the optional of the EVP version it replaced.
func hmacSHA256(key: [UInt8], message: ArraySlice<UInt8>) -> [UInt8]? {
    _ = OpenSSLSetup.cpu
    var mac = [UInt8](repeating: 0, count: 32)
    message.withUnsafeBytes { buffer in
        let bytes = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
        copenssl_hmac_sha256(key, key.count, bytes, buffer.count, &mac)
    }
    return mac
}

/// Strict base64url without padding (RFC 7515 §2, RFC 4648 §5), as JWS compact serialization requires.
enum Base64URL {
    /// The decoded bytes, or nil for anything but canonical unpadded base64url: a character outside
    /// A–Z a–z 0–9 - _, any '=' or whitespace, a length ≡ 1 mod 4, or nonzero unused bits in the last character
    /// (which would let several texts decode to the same bytes).
    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        if text.count % 4 == 1 { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(text.count * 3 / 4)
        var buffer: UInt32 = 0
        var bits = 0
        for c in text {
            guard let v = sextet(c) else { return nil }
            buffer = buffer << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
                buffer &= (1 << UInt32(bits)) - 1
            }
        }
        // Left over: 0 bits (length ≡ 0), 2 bits (≡ 3) or 4 bits (≡ 2); they must all be zero.
        guard buffer == 0 else { return nil }
        return out
    }

    private static func sextet(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): return 62
        case UInt8(ascii: "_"): return 63
        default: return nil
        }
    }
}
