import COpenSSL

/// A one-time code the caller puts in their LeetCode profile's About me to prove they own it.
public struct Challenge: Sendable, Equatable {
    public var username: String
    public var code: String
    public var expiresAt: String

    /// Where the code must go; shown to the user.
    public static let instructions =
        "Paste the code anywhere in your LeetCode profile's About me: leetcode.com -> Edit Profile -> Summary "
        + "(About me), save, then verify. You can remove it once the profile is linked."

    /// Crockford's base32: no I, L, O or U, so a code read aloud or retyped is not ambiguous.
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
    /// 13 characters × 5 bits = 65 bits from OpenSSL's CSPRNG.
    static let randomCharacters = 13

    /// `prefix` followed by 65 random bits in Crockford base32.
    /// - Throws: `internal` if the CSPRNG cannot be seeded.
    public static func newCode(prefix: String) throws(ClaimError) -> String {
        _ = OpenSSLSetup.ready
        var random = [UInt8](repeating: 0, count: 9)
        guard RAND_bytes(&random, Int32(random.count)) == 1 else {
            throw ClaimError(.internal, "could not generate a challenge code", detail: "RAND_bytes failed")
        }
        var bits: UInt128 = 0
        for byte in random { bits = bits << 8 | UInt128(byte) }
        var code = Array(prefix.utf8)
        for i in 0..<randomCharacters {
            code.append(alphabet[Int((bits >> (5 * UInt128(i))) & 31)])
        }
        return String(decoding: code, as: UTF8.self)
    }
}
