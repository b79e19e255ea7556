extension String {
    /// Whether `needle` occurs in this string, comparing UTF-8 bytes exactly: case-sensitive, and without
    /// Unicode canonical equivalence, which is what matching a proof code needs. It replaces the
    /// `_StringProcessing` overload of `contains`, a module this package does not link (see Package.swift).
    func hasSubstring(_ needle: String) -> Bool {
        let haystack = Array(utf8)
        let pattern = Array(needle.utf8)
        guard !pattern.isEmpty else { return true }
        guard haystack.count >= pattern.count else { return false }
        for start in 0...(haystack.count - pattern.count)
        where haystack[start] == pattern[0] && haystack[start..<start + pattern.count].elementsEqual(pattern) {
            return true
        }
        return false
    }
}
