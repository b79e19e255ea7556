/// The statements of the limits, written once with SQLite's `?N` placeholders; PostgreSQL runs the same text with
/// `$N` (`postgres(_:)`), except that it reads a reservation's inputs in one statement built around `callerWindow`
/// (`PostgresStore.slotCheckSQL`).
/// Times are the store's fixed-width RFC 3339 text, so text order is time order.
enum LimitsSQL {
    // SQLite prepares every statement anew in every process, and spends more on a subquery than on another plain
    // statement (callgrind, BENCHMARKS.md): these are plain.

    /// How many slots the caller took in the last hour (`callerWindowParameters` without the offset): cheaper to
    /// prepare than `callerWindow`, which SQLite runs only when the window is full.
    static let callerCount = "SELECT count(*) FROM leetcode_requests WHERE user_id = ?1 AND at > ?2"

    /// The caller's `verifyPerHour`-th newest slot of the last hour: no row while the window has room. It walks the
    /// caller's own slots of the hour, at most `verifyPerHour` of them.
    static let callerWindow = """
        SELECT at FROM leetcode_requests WHERE user_id = ?1 AND at > ?2 ORDER BY at DESC LIMIT 1 OFFSET ?3
        """

    /// The slot numbered ?1. Slots are numbered without gaps in the order they are taken (pruning removes only the
    /// oldest), so everyone's `leetcodePerMinute`-th newest is one lookup whatever the limit.
    static let slotNumbered = "SELECT at FROM leetcode_requests WHERE seq = ?1"

    /// One slot, taken now by the caller; SQLite numbers it (the rowid is the largest plus one).
    static let takeSlot = "INSERT INTO leetcode_requests (at, user_id) VALUES (?1, ?2)"

    /// Slots older than the longest window (an hour) count for nothing: deletes those among the 128 lowest numbers
    /// (the oldest, but for clock skew between hosts). Run after every `pruneEvery`-th slot, it removes them faster
    /// than they come, so the table holds at most the last hour's slots plus 128, without an index on `at`.
    static let pruneSlots = """
        DELETE FROM leetcode_requests WHERE seq IN (SELECT seq FROM leetcode_requests ORDER BY seq LIMIT 128)
        AND at <= ?1
        """

    /// Pruning runs after every 64th slot (its number tells).
    static let pruneEvery: Int64 = 64

    /// The breaker's state (no row reads as closed; `saveBreaker` puts it back).
    static let breaker = "SELECT state FROM leetcode_breaker WHERE id = 1"

    /// The breaker's state (`LeetCodeBreaker.state`), its row put back if it was deleted.
    static let saveBreaker = """
        INSERT INTO leetcode_breaker (id, state) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET state = excluded.state
        """

    /// The caller's `maxLiveChallenges`-th newest live challenge's expiry: when one more is allowed again.
    static let challengeLimit = """
        SELECT expires_at FROM challenges WHERE user_id = ?1 AND expires_at > ?2
        ORDER BY expires_at DESC LIMIT 1 OFFSET ?3
        """

    /// `sql` with PostgreSQL's `$N` for SQLite's `?N` (these statements hold no other question mark).
    static func postgres(_ sql: String) -> String {
        String(sql.map { $0 == "?" ? "$" : $0 })
    }
}
