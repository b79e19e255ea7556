/// Settings read from the environment, validated before any request is served.
public struct Config: Sendable {
    public enum Auth: String, CaseIterable, Sendable { case trusted, jwt }
    public enum Verify: String, CaseIterable, Sendable { case off, leetcode }
    public enum Journal: String, CaseIterable, Sendable { case wal, delete }
    public enum Sync: String, CaseIterable, Sendable { case full, normal }

    public var databasePath: String
    public var auth: Auth
    public var verify: Verify
    public var busyTimeoutMs: Int
    public var sync: Sync
    public var journal: Journal

    /// Every environment variable the binary reads, with its default (nil = none). function.json must list
    /// exactly these; a test compares the two.
    public static let variables: [(name: String, defaultValue: String?)] = [
        ("CLAIM_DB", "./data/claims.sqlite"),
        ("CLAIM_AUTH", nil),
        ("CLAIM_VERIFY", "leetcode"),
        ("CLAIM_BUSY_TIMEOUT_MS", "3000"),
        ("CLAIM_SYNC", "full"),
        ("CLAIM_JOURNAL", "wal"),
    ]

    /// Reads and validates the configuration.
    /// - Parameter environment: looks a variable up; an empty value counts as unset.
    /// - Throws: `misconfigured`, naming the variable.
    /// - Parameter storageOnly: read only the database settings (for `migrate`, which serves no caller).
    public static func load(_ environment: (String) -> String?, storageOnly: Bool = false) throws(ClaimError) -> Config {
        func value(_ name: String) -> String? {
            guard let v = environment(name), !v.isEmpty else {
                return variables.first { $0.name == name }?.defaultValue
            }
            return v
        }
        func choice<T: RawRepresentable<String> & CaseIterable>(_ name: String, _: T.Type) throws(ClaimError) -> T {
            guard let raw = value(name) else {
                throw ClaimError(.misconfigured, "\(name) is not set")
            }
            guard let v = T(rawValue: raw) else {
                let allowed = T.allCases.map(\.rawValue).joined(separator: ", ")
                throw ClaimError(.misconfigured, "\(name) must be one of: \(allowed)")
            }
            return v
        }
        let auth = storageOnly ? .trusted : try choice("CLAIM_AUTH", Auth.self)
        let verify = storageOnly ? .off : try choice("CLAIM_VERIFY", Verify.self)
        let sync = try choice("CLAIM_SYNC", Sync.self)
        let journal = try choice("CLAIM_JOURNAL", Journal.self)
        guard let timeoutText = value("CLAIM_BUSY_TIMEOUT_MS"), let timeout = Int(timeoutText),
            (0...600_000).contains(timeout)
        else {
            throw ClaimError(.misconfigured, "CLAIM_BUSY_TIMEOUT_MS must be an integer from 0 to 600000")
        }
        guard let path = value("CLAIM_DB") else { throw ClaimError(.misconfigured, "CLAIM_DB is not set") }
        return Config(
            databasePath: path, auth: auth, verify: verify, busyTimeoutMs: timeout, sync: sync, journal: journal)
    }
}
