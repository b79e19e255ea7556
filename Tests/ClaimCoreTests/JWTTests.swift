import COpenSSL
import Foundation
import Testing

@testable import ClaimCore

extension JWTTests {
    /// Tokens minted by PyJWT 2.15.1 with `Tests/ClaimCoreTests/jwt_vectors.py`; paste its output here when it changes.
    /// exp is 2100-01-01, so they never go stale.
    enum PyJWTVectors {
        static let secret = "super-secret-jwt-token-with-at-least-32-characters-long"
        static let otherSecret = "another-secret-that-is-also-at-least-32-bytes"
        static let sub = "8b1f3c5e-2d4a-4f6b-9c7e-0a1b2c3d4e5f"
        static let issuer = "https://xyz.supabase.co/auth/v1"
        static let supabase = """
            eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJhdXRoZW50aWNhdGVkIiwiZXhwIjo0MTAyNDQ0ODAwLCJpYXQiOjE\
            3MDAwMDAwMDAsImlzcyI6Imh0dHBzOi8veHl6LnN1cGFiYXNlLmNvL2F1dGgvdjEiLCJzdWIiOiI4YjFmM2M1ZS0yZDRhLTRmNmI\
            tOWM3ZS0wYTFiMmMzZDRlNWYiLCJlbWFpbCI6InVzZXJAZXhhbXBsZS5jb20iLCJwaG9uZSI6IiIsImFwcF9tZXRhZGF0YSI6eyJ\
            wcm92aWRlciI6ImVtYWlsIiwicHJvdmlkZXJzIjpbImVtYWlsIl19LCJ1c2VyX21ldGFkYXRhIjp7fSwicm9sZSI6ImF1dGhlbnR\
            pY2F0ZWQiLCJhYWwiOiJhYWwxIiwiYW1yIjpbeyJtZXRob2QiOiJwYXNzd29yZCIsInRpbWVzdGFtcCI6MTcwMDAwMDAwMH1dLCJ\
            zZXNzaW9uX2lkIjoiMGY5ZThkN2MtNmI1YS00YzNkLTJlMWYtMGE5YjhjN2Q2ZTVmIiwiaXNfYW5vbnltb3VzIjpmYWxzZX0.AG8\
            DOtaUHRE5z-vhinSnU2cg5uMS0YTFLz9lmaCRB2s
            """
        static let audArray = """
            eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOlsib3RoZXIiLCJhdXRoZW50aWNhdGVkIl0sImV4cCI6NDEwMjQ0NDg\
            wMCwiaWF0IjoxNzAwMDAwMDAwLCJpc3MiOiJodHRwczovL3h5ei5zdXBhYmFzZS5jby9hdXRoL3YxIiwic3ViIjoiOGIxZjNjNWU\
            tMmQ0YS00ZjZiLTljN2UtMGExYjJjM2Q0ZTVmIiwiZW1haWwiOiJ1c2VyQGV4YW1wbGUuY29tIiwicGhvbmUiOiIiLCJhcHBfbWV\
            0YWRhdGEiOnsicHJvdmlkZXIiOiJlbWFpbCIsInByb3ZpZGVycyI6WyJlbWFpbCJdfSwidXNlcl9tZXRhZGF0YSI6e30sInJvbGU\
            iOiJhdXRoZW50aWNhdGVkIiwiYWFsIjoiYWFsMSIsImFtciI6W3sibWV0aG9kIjoicGFzc3dvcmQiLCJ0aW1lc3RhbXAiOjE3MDA\
            wMDAwMDB9XSwic2Vzc2lvbl9pZCI6IjBmOWU4ZDdjLTZiNWEtNGMzZC0yZTFmLTBhOWI4YzdkNmU1ZiIsImlzX2Fub255bW91cyI\
            6ZmFsc2V9.KJ0c6akDMuD6rPf7o4QFn2bi6R6P_q46MCWwdJhZEIs
            """
        static let decimalTimes = """
            eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJhdXRoZW50aWNhdGVkIiwiZXhwIjo0MTAyNDQ0ODAwLjUsImlhdCI\
            6MTcwMDAwMDAwMC4yNSwiaXNzIjoiaHR0cHM6Ly94eXouc3VwYWJhc2UuY28vYXV0aC92MSIsInN1YiI6IjhiMWYzYzVlLTJkNGE\
            tNGY2Yi05YzdlLTBhMWIyYzNkNGU1ZiIsImVtYWlsIjoidXNlckBleGFtcGxlLmNvbSIsInBob25lIjoiIiwiYXBwX21ldGFkYXR\
            hIjp7InByb3ZpZGVyIjoiZW1haWwiLCJwcm92aWRlcnMiOlsiZW1haWwiXX0sInVzZXJfbWV0YWRhdGEiOnt9LCJyb2xlIjoiYXV\
            0aGVudGljYXRlZCIsImFhbCI6ImFhbDEiLCJhbXIiOlt7Im1ldGhvZCI6InBhc3N3b3JkIiwidGltZXN0YW1wIjoxNzAwMDAwMDA\
            wfV0sInNlc3Npb25faWQiOiIwZjllOGQ3Yy02YjVhLTRjM2QtMmUxZi0wYTliOGM3ZDZlNWYiLCJpc19hbm9ueW1vdXMiOmZhbHN\
            lLCJuYmYiOjE3MDAwMDAwMDAuMjV9.tGmycJxrDcls1uISFwS6cVBiF4PGvAM3XV_KRb2ECJw
            """
        static let wrongSecret = """
            eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJhdXRoZW50aWNhdGVkIiwiZXhwIjo0MTAyNDQ0ODAwLCJpYXQiOjE\
            3MDAwMDAwMDAsImlzcyI6Imh0dHBzOi8veHl6LnN1cGFiYXNlLmNvL2F1dGgvdjEiLCJzdWIiOiI4YjFmM2M1ZS0yZDRhLTRmNmI\
            tOWM3ZS0wYTFiMmMzZDRlNWYiLCJlbWFpbCI6InVzZXJAZXhhbXBsZS5jb20iLCJwaG9uZSI6IiIsImFwcF9tZXRhZGF0YSI6eyJ\
            wcm92aWRlciI6ImVtYWlsIiwicHJvdmlkZXJzIjpbImVtYWlsIl19LCJ1c2VyX21ldGFkYXRhIjp7fSwicm9sZSI6ImF1dGhlbnR\
            pY2F0ZWQiLCJhYWwiOiJhYWwxIiwiYW1yIjpbeyJtZXRob2QiOiJwYXNzd29yZCIsInRpbWVzdGFtcCI6MTcwMDAwMDAwMH1dLCJ\
            zZXNzaW9uX2lkIjoiMGY5ZThkN2MtNmI1YS00YzNkLTJlMWYtMGE5YjhjN2Q2ZTVmIiwiaXNfYW5vbnltb3VzIjpmYWxzZX0.5CN\
            tMT9hSm3JQafPWX6BvfXCp05rBWzj4QN9G2SJWlo
            """
        static let hs512 = """
            eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJhdXRoZW50aWNhdGVkIiwiZXhwIjo0MTAyNDQ0ODAwLCJpYXQiOjE\
            3MDAwMDAwMDAsImlzcyI6Imh0dHBzOi8veHl6LnN1cGFiYXNlLmNvL2F1dGgvdjEiLCJzdWIiOiI4YjFmM2M1ZS0yZDRhLTRmNmI\
            tOWM3ZS0wYTFiMmMzZDRlNWYiLCJlbWFpbCI6InVzZXJAZXhhbXBsZS5jb20iLCJwaG9uZSI6IiIsImFwcF9tZXRhZGF0YSI6eyJ\
            wcm92aWRlciI6ImVtYWlsIiwicHJvdmlkZXJzIjpbImVtYWlsIl19LCJ1c2VyX21ldGFkYXRhIjp7fSwicm9sZSI6ImF1dGhlbnR\
            pY2F0ZWQiLCJhYWwiOiJhYWwxIiwiYW1yIjpbeyJtZXRob2QiOiJwYXNzd29yZCIsInRpbWVzdGFtcCI6MTcwMDAwMDAwMH1dLCJ\
            zZXNzaW9uX2lkIjoiMGY5ZThkN2MtNmI1YS00YzNkLTJlMWYtMGE5YjhjN2Q2ZTVmIiwiaXNfYW5vbnltb3VzIjpmYWxzZX0.qdq\
            6B7vEnLNgOkMAW5EYgAX8KdAcE46QxGRSDcAywZsE2V24_WeHtPsoaBWvi6NZlHDEybRFn478Mx0dHkhyMA
            """
        static let algNone = """
            eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJhdWQiOiJhdXRoZW50aWNhdGVkIiwiZXhwIjo0MTAyNDQ0ODAwLCJpYXQiOjE3\
            MDAwMDAwMDAsImlzcyI6Imh0dHBzOi8veHl6LnN1cGFiYXNlLmNvL2F1dGgvdjEiLCJzdWIiOiI4YjFmM2M1ZS0yZDRhLTRmNmIt\
            OWM3ZS0wYTFiMmMzZDRlNWYiLCJlbWFpbCI6InVzZXJAZXhhbXBsZS5jb20iLCJwaG9uZSI6IiIsImFwcF9tZXRhZGF0YSI6eyJw\
            cm92aWRlciI6ImVtYWlsIiwicHJvdmlkZXJzIjpbImVtYWlsIl19LCJ1c2VyX21ldGFkYXRhIjp7fSwicm9sZSI6ImF1dGhlbnRp\
            Y2F0ZWQiLCJhYWwiOiJhYWwxIiwiYW1yIjpbeyJtZXRob2QiOiJwYXNzd29yZCIsInRpbWVzdGFtcCI6MTcwMDAwMDAwMH1dLCJz\
            ZXNzaW9uX2lkIjoiMGY5ZThkN2MtNmI1YS00YzNkLTJlMWYtMGE5YjhjN2Q2ZTVmIiwiaXNfYW5vbnltb3VzIjpmYWxzZX0.
            """
    }

    /// Mints tokens with libcrypto's HMAC directly, so the tests do not trust the code under test to sign.
    enum Mint {
        static let now: Int64 = 1_750_000_000
        static let secret = PyJWTVectors.secret
        static let issuer = PyJWTVectors.issuer
        static let sub = PyJWTVectors.sub
        static let header = #"{"alg":"HS256","typ":"JWT"}"#

        static func b64(_ bytes: [UInt8]) -> String {
            Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }

        static func b64(_ text: String) -> String { b64(Array(text.utf8)) }

        static func signature(_ signingInput: String, secret: String = secret) -> String {
            let key = Array(secret.utf8)
            let data = Array(signingInput.utf8)
            var mac = [UInt8](repeating: 0, count: 32)
            var length: UInt32 = 0
            _ = HMAC(EVP_sha256(), key, Int32(key.count), data, data.count, &mac, &length)
            return b64(mac)
        }

        /// header.payload.signature over already-encoded parts, signed as given (even if they are not valid base64url).
        static func signed(_ headerPart: String, _ payloadPart: String, secret: String = secret) -> String {
            "\(headerPart).\(payloadPart).\(signature("\(headerPart).\(payloadPart)", secret: secret))"
        }

        /// A token from raw JSON texts.
        static func token(header: String = header, payload: String = claims(), secret: String = secret) -> String {
            signed(b64(header), b64(payload), secret: secret)
        }

        /// A Supabase-shaped payload; `changes` replace, add (raw JSON text) or, with nil, remove claims.
        static func claims(_ changes: KeyValuePairs<String, String?> = [:]) -> String {
            var members: [(String, String)] = [
                ("aud", #""authenticated""#),
                ("exp", "\(now + 3600)"),
                ("iat", "\(now - 60)"),
                ("iss", #""\#(issuer)""#),
                ("sub", #""\#(sub)""#),
                ("email", #""user@example.com""#),
                ("role", #""authenticated""#),
                ("aal", #""aal1""#),
                ("session_id", #""0f9e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f""#),
                ("is_anonymous", "false"),
            ]
            for (key, value) in changes {
                let at = members.firstIndex { $0.0 == key }
                switch (at, value) {
                case (let i?, let v?): members[i].1 = v
                case (let i?, nil): members.remove(at: i)
                case (nil, let v?): members.append((key, v))
                case (nil, nil): break
                }
            }
            return "{" + members.map { #""\#($0.0)":\#($0.1)"# }.joined(separator: ",") + "}"
        }

        /// A validly signed token exactly `length` bytes long, padded through a `kid` header and a filler claim
        /// (base64url never has a length ≡ 1 mod 4, so one padding field alone cannot hit every length).
        static func token(ofLength length: Int) -> String {
            for kid in 0..<4 {
                let header = #"{"alg":"HS256","typ":"JWT","kid":"\#(String(repeating: "k", count: kid))"}"#
                func padded(_ filler: Int) -> String {
                    token(header: header, payload: claims(["x": #""\#(String(repeating: "x", count: filler))""#]))
                }
                // Each filler byte adds 4/3 of a character: jump close to the target, then step.
                var filler = max(0, (length - padded(0).utf8.count) * 3 / 4 - 3)
                while padded(filler).utf8.count < length { filler += 1 }
                if padded(filler).utf8.count == length { return padded(filler) }
            }
            fatalError("no token of \(length) bytes")
        }

        static func verifier(issuer: String? = issuer, leeway: Int = 30) throws -> JWTVerifier {
            try JWTVerifier(
                secret: Array(secret.utf8), audience: "authenticated", issuer: issuer, leewaySeconds: leeway)
        }
    }

    /// One way a token must be refused, and a phrase its message must contain.
    struct Rejection: Sendable, CustomTestStringConvertible {
        var name: String
        var token: String
        var reason: String
        var testDescription: String { name }

        init(_ name: String, _ token: String, _ reason: String) {
            self.name = name
            self.token = token
            self.reason = reason
        }
    }
}

@Suite struct JWTTests {
    static func withParts(_ token: String, header: String? = nil, payload: String? = nil, signature: String? = nil)
        -> String
    {
        let p = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        return [header ?? p[0], payload ?? p[1], signature ?? p[2]].joined(separator: ".")
    }

    static let valid = Mint.token()
    static let now = Mint.now
    static func claims(_ changes: KeyValuePairs<String, String?> = [:]) -> String { Mint.claims(changes) }

    static let rejections: [Rejection] = [
        // Shape
        Rejection("empty", "", "bearer token is missing"),
        Rejection("8193 bytes", Mint.token(ofLength: 8193), "longer than 8192 bytes"),
        Rejection("garbage", "not a token", "three dot-separated parts"),
        Rejection("two parts", Mint.b64(Mint.header) + "." + Mint.b64(claims()), "three dot-separated parts"),
        Rejection("four parts", valid + ".AAAA", "three dot-separated parts"),
        // base64url
        Rejection(
            "bad char in header", withParts(valid, header: "eyJ!" + Mint.b64(Mint.header)),
            "header is not valid base64url"),
        Rejection("whitespace in header", " " + valid, "header is not valid base64url"),
        Rejection("header length 1 mod 4", withParts(valid, header: "eyJhb"), "header is not valid base64url"),
        Rejection(
            "standard base64 '+' in header", withParts(valid, header: "eyJ+" + Mint.b64(Mint.header)),
            "header is not valid base64url"),
        Rejection("padding on signature", valid + "=", "signature is not valid base64url"),
        Rejection(
            "bad char in signature", withParts(valid, signature: "AG8DOtaUHRE5z+vhinSnU2cg5uMS0YTFLz9lmaCRB2s"),
            "signature is not valid base64url"),
        Rejection(
            "padding on payload, signed", Mint.signed(Mint.b64(Mint.header), Mint.b64(claims()) + "="),
            "payload is not valid base64url"),
        Rejection(
            "bad char in payload, signed", Mint.signed(Mint.b64(Mint.header), "eyJ*" + Mint.b64(claims())),
            "payload is not valid base64url"),
        // Header
        Rejection("header not JSON", Mint.token(header: #"{"alg":"HS256""#), "header is not a JSON object"),
        Rejection("header is an array", Mint.token(header: #"["HS256"]"#), "header is not a JSON object"),
        Rejection(
            "header duplicate alg", Mint.token(header: #"{"alg":"none","alg":"HS256"}"#),
            "header is not a JSON object"),
        Rejection("alg missing", Mint.token(header: #"{"typ":"JWT"}"#), "header has no alg"),
        Rejection(
            "alg none, empty signature", Mint.b64(#"{"alg":"none","typ":"JWT"}"#) + "." + Mint.b64(claims()) + ".",
            "alg is not supported"),
        Rejection("alg none, PyJWT", PyJWTVectors.algNone, "alg is not supported"),
        Rejection(
            "alg swapped to HS512, original signature",
            withParts(valid, header: Mint.b64(#"{"alg":"HS512","typ":"JWT"}"#)), "alg is not supported"),
        Rejection(
            "alg swapped to RS256, original signature",
            withParts(valid, header: Mint.b64(#"{"alg":"RS256","typ":"JWT"}"#)), "alg is not supported"),
        Rejection("alg HS512, PyJWT", PyJWTVectors.hs512, "alg is not supported"),
        Rejection("alg lowercase hs256", Mint.token(header: #"{"alg":"hs256","typ":"JWT"}"#), "alg is not supported"),
        Rejection("alg not a string", Mint.token(header: #"{"alg":["HS256"],"typ":"JWT"}"#), "alg is not supported"),
        Rejection("crit", Mint.token(header: #"{"alg":"HS256","typ":"JWT","crit":["exp"]}"#), "crit"),
        Rejection("typ JWS", Mint.token(header: #"{"alg":"HS256","typ":"JWS"}"#), "typ is not JWT"),
        Rejection("typ not a string", Mint.token(header: #"{"alg":"HS256","typ":1}"#), "typ is not JWT"),
        // Signature
        Rejection("signature stripped", withParts(valid, signature: ""), "signature is missing"),
        Rejection(
            "payload edited after signing", withParts(valid, payload: Mint.b64(claims(["sub": #""attacker""#]))),
            "signature does not verify"),
        Rejection("wrong secret", Mint.token(secret: PyJWTVectors.otherSecret), "signature does not verify"),
        Rejection("wrong secret, PyJWT", PyJWTVectors.wrongSecret, "signature does not verify"),
        Rejection(
            "signature truncated", withParts(valid, signature: String(valid.split(separator: ".")[2].prefix(20))),
            "signature does not verify"),
        Rejection(
            "signature of HS512 length", withParts(valid, signature: String(repeating: "A", count: 86)),
            "signature does not verify"),
        Rejection("signature one bit off", flipLastSignatureBit(valid), "signature does not verify"),
        // Payload
        Rejection(
            "payload duplicate keys", Mint.token(payload: claims(["sub": #""a""#]).dropLast() + #","sub":"b"}"#),
            "payload is not valid JSON"),
        Rejection(
            "payload invalid UTF-8",
            Mint.signed(Mint.b64(Mint.header), Mint.b64([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D])),
            "payload is not valid JSON"),
        Rejection("payload is an array", Mint.token(payload: "[" + claims() + "]"), "payload is not a JSON object"),
        Rejection("payload is a string", Mint.token(payload: #""sub""#), "payload is not a JSON object"),
        // Time claims
        Rejection("exp missing", Mint.token(payload: claims(["exp": nil])), "no exp claim"),
        Rejection("exp string", Mint.token(payload: claims(["exp": "\"\(now + 3600)\""])), "exp claim is not a number"),
        Rejection("exp boolean", Mint.token(payload: claims(["exp": "true"])), "exp claim is not a number"),
        Rejection("exp null", Mint.token(payload: claims(["exp": "null"])), "exp claim is not a number"),
        Rejection("exp 1e400", Mint.token(payload: claims(["exp": "1e400"])), "exp claim is out of range"),
        Rejection(
            "exp beyond year 9999", Mint.token(payload: claims(["exp": "253402300800"])), "exp claim is out of range"),
        Rejection(
            "exp 40 digits", Mint.token(payload: claims(["exp": String(repeating: "9", count: 40)])),
            "exp claim is out of range"),
        Rejection("exp negative", Mint.token(payload: claims(["exp": "-1"])), "exp claim is out of range"),
        Rejection("expired beyond leeway", Mint.token(payload: claims(["exp": "\(now - 31)"])), "expired"),
        Rejection("expired beyond leeway, decimal", Mint.token(payload: claims(["exp": "\(now - 31).5"])), "expired"),
        Rejection("nbf in the future", Mint.token(payload: claims(["nbf": "\(now + 31)"])), "not valid yet"),
        Rejection("nbf string", Mint.token(payload: claims(["nbf": "\"\(now)\""])), "nbf claim is not a number"),
        Rejection("iat in the future", Mint.token(payload: claims(["iat": "\(now + 31)"])), "issued in the future"),
        Rejection("iat boolean", Mint.token(payload: claims(["iat": "false"])), "iat claim is not a number"),
        // Audience, issuer, subject
        Rejection("aud missing", Mint.token(payload: claims(["aud": nil])), "no aud claim"),
        Rejection(
            "aud wrong", Mint.token(payload: claims(["aud": #""anon""#])), #"aud does not include "authenticated""#),
        Rejection(
            "aud differs in case", Mint.token(payload: claims(["aud": #""Authenticated""#])),
            #"aud does not include "authenticated""#),
        Rejection(
            "aud array without it", Mint.token(payload: claims(["aud": #"["anon","service_role"]"#])),
            #"aud does not include "authenticated""#),
        Rejection(
            "aud empty array", Mint.token(payload: claims(["aud": "[]"])), #"aud does not include "authenticated""#),
        Rejection(
            "aud array with a number", Mint.token(payload: claims(["aud": #"["authenticated",1]"#])),
            "aud claim is not a string or an array of strings"),
        Rejection(
            "aud object", Mint.token(payload: claims(["aud": #"{"authenticated":true}"#])),
            "aud claim is not a string or an array of strings"),
        Rejection("iss missing", Mint.token(payload: claims(["iss": nil])), "no iss claim"),
        Rejection(
            "iss wrong", Mint.token(payload: claims(["iss": #""https://evil.supabase.co/auth/v1""#])),
            "iss is not the configured issuer"),
        Rejection("iss not a string", Mint.token(payload: claims(["iss": "[]"])), "iss is not the configured issuer"),
        Rejection("sub missing", Mint.token(payload: claims(["sub": nil])), "no sub claim"),
        Rejection("sub number", Mint.token(payload: claims(["sub": "42"])), "sub claim is not a string"),
        Rejection("sub empty", Mint.token(payload: claims(["sub": #""""#])), "sub is not a valid user id"),
        Rejection("sub with a space", Mint.token(payload: claims(["sub": #""a b""#])), "sub is not a valid user id"),
        Rejection("sub non-ASCII", Mint.token(payload: claims(["sub": #""usér""#])), "sub is not a valid user id"),
        Rejection(
            "sub 129 chars", Mint.token(payload: claims(["sub": "\"\(String(repeating: "a", count: 129))\""])),
            "sub is not a valid user id"),
    ]

    static func flipLastSignatureBit(_ token: String) -> String {
        // The 43rd character carries 4 data bits then 2 zero bits; flip its lowest data bit (value 4).
        let p = token.split(separator: ".").map(String.init)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let last = alphabet.firstIndex(of: p[2].last ?? "A") ?? 0
        return withParts(token, signature: String(p[2].dropLast()) + String(alphabet[last ^ 4]))
    }

    @Test(arguments: rejections)
    func rejects(_ r: Rejection) throws {
        let verifier = try Mint.verifier()
        let error = try #require(throws: ClaimError.self) { try verifier.verify(r.token, now: Mint.now) }
        #expect(error.code == .unauthenticated)
        #expect(error.message.contains(r.reason), "message: \(error.message)")
        // Never echo the token or any long piece of it.
        #expect(error.detail == nil)
        if !r.token.isEmpty { #expect(!error.message.contains(r.token)) }
        for part in r.token.split(separator: ".") where part.count >= 8 {
            #expect(!error.message.contains(part))
        }
    }

    struct Acceptance: Sendable, CustomTestStringConvertible {
        var name: String
        var token: String
        var sub = Mint.sub
        var issuer: String? = Mint.issuer
        var leeway = 30
        var testDescription: String { name }
    }

    static let acceptances: [Acceptance] = [
        Acceptance(name: "Supabase-shaped", token: valid),
        Acceptance(name: "PyJWT Supabase-shaped", token: PyJWTVectors.supabase),
        Acceptance(name: "PyJWT aud array", token: PyJWTVectors.audArray),
        Acceptance(name: "PyJWT decimal exp, iat, nbf", token: PyJWTVectors.decimalTimes),
        Acceptance(name: "aud array", token: Mint.token(payload: claims(["aud": #"["other","authenticated"]"#]))),
        Acceptance(name: "aud array of one", token: Mint.token(payload: claims(["aud": #"["authenticated"]"#]))),
        Acceptance(name: "exp exactly at leeway", token: Mint.token(payload: claims(["exp": "\(now - 30)"]))),
        Acceptance(name: "exp decimal within leeway", token: Mint.token(payload: claims(["exp": "\(now - 30).5"]))),
        Acceptance(name: "exp in exponent form", token: Mint.token(payload: claims(["exp": "4.1e9"]))),
        Acceptance(
            name: "exp == now, no leeway", token: Mint.token(payload: claims(["exp": "\(now)"])), leeway: 0),
        Acceptance(name: "nbf now", token: Mint.token(payload: claims(["nbf": "\(now)"]))),
        Acceptance(name: "nbf exactly at leeway", token: Mint.token(payload: claims(["nbf": "\(now + 30)"]))),
        Acceptance(name: "iat exactly at leeway", token: Mint.token(payload: claims(["iat": "\(now + 30)"]))),
        Acceptance(name: "typ lowercase", token: Mint.token(header: #"{"alg":"HS256","typ":"jwt"}"#)),
        Acceptance(name: "typ absent", token: Mint.token(header: #"{"alg":"HS256"}"#)),
        Acceptance(name: "kid ignored", token: Mint.token(header: #"{"alg":"HS256","typ":"JWT","kid":"abc"}"#)),
        Acceptance(
            name: "only exp, aud, sub; issuer not configured",
            token: Mint.token(payload: #"{"exp":\#(now + 60),"aud":"authenticated","sub":"u1"}"#), sub: "u1",
            issuer: nil),
        Acceptance(
            name: "any iss when issuer not configured",
            token: Mint.token(payload: claims(["iss": #""https://other.example""#])), issuer: nil),
        Acceptance(
            name: "sub 128 printable chars",
            token: Mint.token(payload: claims(["sub": "\"\(String(repeating: "~", count: 128))\""])),
            sub: String(repeating: "~", count: 128)),
        Acceptance(
            name: "sub with '|'", token: Mint.token(payload: claims(["sub": #""auth0|abc""#])), sub: "auth0|abc"),
        Acceptance(name: "exactly 8192 bytes", token: Mint.token(ofLength: 8192)),
    ]

    @Test(arguments: acceptances)
    func accepts(_ a: Acceptance) throws {
        let verifier = try Mint.verifier(issuer: a.issuer, leeway: a.leeway)
        #expect(try verifier.verify(a.token, now: Mint.now) == a.sub)
    }

    @Test func tokenLengthHelperIsExact() {
        #expect(Mint.token(ofLength: 8192).utf8.count == 8192)
        #expect(Mint.token(ofLength: 8193).utf8.count == 8193)
    }

    @Test func leewayZeroRejectsOneSecondLate() throws {
        let verifier = try Mint.verifier(leeway: 0)
        let error = try #require(throws: ClaimError.self) {
            try verifier.verify(Mint.token(payload: Self.claims(["exp": "\(Mint.now - 1)"])), now: Mint.now)
        }
        #expect(error.code == .unauthenticated)
        #expect(error.message.contains("expired"))
    }

    @Test(arguments: [0, 1, 31])
    func shortSecretIsMisconfigured(length: Int) {
        let secret = String(repeating: "%", count: length)
        let error = #expect(throws: ClaimError.self) {
            try JWTVerifier(secret: Array(secret.utf8), audience: "authenticated", issuer: nil, leewaySeconds: 30)
        }
        #expect(error?.code == .misconfigured)
        #expect(error?.message.contains("CLAIM_JWT_SECRET") == true)
        #expect(error?.message.contains("32 bytes") == true)
        if length > 0 { #expect(error?.message.contains(secret) == false) }
    }

    @Test func thirtyTwoByteSecretIsEnough() throws {
        let secret = String(repeating: "s", count: 32)
        let verifier = try JWTVerifier(
            secret: Array(secret.utf8), audience: "authenticated", issuer: nil, leewaySeconds: 30)
        #expect(try verifier.verify(Mint.token(secret: secret), now: Mint.now) == Mint.sub)
    }

    @Test func negativeLeewayIsMisconfigured() {
        let error = #expect(throws: ClaimError.self) {
            try JWTVerifier(
                secret: Array(Mint.secret.utf8), audience: "authenticated", issuer: nil, leewaySeconds: -1)
        }
        #expect(error?.code == .misconfigured)
        #expect(error?.message.contains("CLAIM_JWT_LEEWAY_S") == true)
    }

    @Test func audienceIsConfigurable() throws {
        let verifier = try JWTVerifier(
            secret: Array(Mint.secret.utf8), audience: "anon", issuer: nil, leewaySeconds: 30)
        #expect(try verifier.verify(Mint.token(payload: Self.claims(["aud": #""anon""#])), now: Mint.now) == Mint.sub)
        let error = try #require(throws: ClaimError.self) { try verifier.verify(Self.valid, now: Mint.now) }
        #expect(error.message.contains(#"aud does not include "anon""#))
    }

    // RFC 4231 test case 2.
    @Test func hmacMatchesRFC4231() throws {
        let mac = try #require(
            hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)[...]))
        let hex = mac.map { String(format: "%02x", $0) }.joined()
        #expect(hex == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }
}

@Suite struct JWTBase64URLTests {
    @Test(arguments: [
        ("", [UInt8]()),
        ("Zg", Array("f".utf8)),
        ("Zm8", Array("fo".utf8)),
        ("Zm9v", Array("foo".utf8)),
        ("Zm9vYg", Array("foob".utf8)),
        ("-_8", [0xFB, 0xFF]),
        ("AAAA", [0, 0, 0]),
    ])
    func decodes(text: String, bytes: [UInt8]) {
        #expect(Base64URL.decode(Array(text.utf8)) == bytes)
    }

    @Test(arguments: [
        "Zg==",  // padding
        "Zm8=",
        "Z",  // length ≡ 1 mod 4
        "Zm9vY",
        "Zm9v Zg",  // whitespace
        "Zm9v\nZg",
        "+/8",  // standard alphabet
        "Zm9.",
        "Zh",  // non-canonical: unused low bits set
        "Zm9",
        "Zm9vYh",
        "Zm9vZ\u{e9}",  // non-ASCII
    ])
    func rejects(text: String) {
        #expect(Base64URL.decode(Array(text.utf8)) == nil)
    }

    @Test func roundTripsFoundationEncoding() {
        for length in 0..<70 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11 &* length) }
            #expect(Base64URL.decode(Array(JWTTests.Mint.b64(bytes).utf8)) == bytes, "length \(length)")
        }
    }
}
