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
    /// 13 characters × 5 bits = 65 bits from the kernel's CSPRNG.
    static let randomCharacters = 13

    /// `prefix` followed by 65 random bits in Crockford base32.
    /// - Throws: `internal` if the kernel's CSPRNG fails.
    public static func newCode(prefix: String) throws(ClaimError) -> String {
        // getrandom rather than RAND_bytes: setting up OpenSSL's DRBG costs ~1.4 ms per process, and the kernel's
        // generator is the one that seeds it (https://man7.org/linux/man-pages/man2/getrandom.2.html).
        var random = [UInt8](repeating: 0, count: 9)
        guard copenssl_getrandom(&random, random.count) == 0 else {
            throw ClaimError(.internal, "could not generate a challenge code", detail: "getrandom failed")
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
