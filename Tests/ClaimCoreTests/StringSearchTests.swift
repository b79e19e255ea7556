import Testing

@testable import ClaimCore

@Suite struct StringSearchTests {
    @Test(arguments: [
        ("Hi LCC-7T4EBCNKT1VR4 there", "LCC-7T4EBCNKT1VR4", true),
        ("LCC-7T4EBCNKT1VR4", "LCC-7T4EBCNKT1VR4", true),
        ("lcc-7t4ebcnkt1vr4", "LCC-7T4EBCNKT1VR4", false),
        ("LCC-7T4EBCNKT1VR", "LCC-7T4EBCNKT1VR4", false),
        ("", "a", false),
        ("abc", "", true),
        ("aaab", "aab", true),
        ("caf\u{E9}", "cafe\u{301}", false),
        ("\u{1F600}LCC-X\u{1F600}", "LCC-X", true),
        ("<title>Just a moment...</title>", "Just a moment", true),
    ])
    func findsExactBytes(haystack: String, needle: String, found: Bool) {
        #expect(haystack.hasSubstring(needle) == found)
    }
}
