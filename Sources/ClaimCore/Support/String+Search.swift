extension String {
    /// Whether `needle` occurs in this string, comparing UTF-8 bytes exactly: case-sensitive, and without
    /// Unicode canonical equivalence, which is what matching a proof code needs. It replaces the
    /// `_StringProcessing` overload of `contains`, a module this package does not link (see Package.swift).
    func hasSubstring(_ needle: String) -> Bool {
        Array(utf8).hasSubsequence(Array(needle.utf8))
    }
}

extension [UInt8] {
    /// Whether `pattern` occurs in these bytes, contiguously.
    func hasSubsequence(_ pattern: [UInt8]) -> Bool {
        guard !pattern.isEmpty else { return true }
        guard count >= pattern.count else { return false }
        for start in 0...(count - pattern.count)
        where self[start] == pattern[0] && self[start..<start + pattern.count].elementsEqual(pattern) {
            return true
        }
        return false
    }
}
