import CSQLite

#if canImport(Glibc)
import Glibc
#endif

/// Creating, versioning and migrating the SQLite file.
extension SQLiteStore {
    static func folder(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        return slash == path.utf8.startIndex ? "/" : String(path[..<slash])
    }

    /// `mkdir -p` for the database's folder; an existing folder is fine, a race with another process too.
    static func createParentFolder(of path: String) throws(ClaimError) {
        var bytes = Array(path.utf8)
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")), slash > 0 else { return }
        bytes.removeSubrange(slash...)
        // The common case costs one stat: the folder is there.
        var info = stat()
        if stat(String(decoding: bytes, as: UTF8.self), &info) == 0 { return }
        var prefix: [UInt8] = []
        for (i, byte) in bytes.enumerated() {
            prefix.append(byte)
            let atEnd = i == bytes.count - 1
            guard atEnd || bytes[i + 1] == UInt8(ascii: "/"), byte != UInt8(ascii: "/") else { continue }
            let folder = String(decoding: prefix, as: UTF8.self)
            if mkdir(folder, 0o755) != 0 && errno != EEXIST {
                let reason = String(cString: strerror(errno))
                throw StoreFailure.cannotCreateFolder.error(detail: "mkdir \(folder): \(reason)")
            }
        }
    }

    /// Sets the journal mode, retrying while another process holds the file.
    ///
    /// The first `PRAGMA journal_mode=WAL` on a brand-new file needs an exclusive lock and returns SQLITE_BUSY
    /// at once, without consulting the busy handler, when other processes are opening the same file
    /// (https://sqlite.org/wal.html#activating_and_configuring_wal_mode). So retry here, bounded by the same
    /// timeout as the write lock.
    func setJournalMode(_ mode: Config.Journal, busyTimeoutMs: Int) throws(ClaimError) {
        let wanted = mode == .wal ? "wal" : "delete"
        do throws(SQLiteError) {
            if try connection.query("PRAGMA journal_mode").first?.first == wanted { return }
        } catch {
            throw error.claimError(context: "journal_mode")
        }
        // Changing it needs the file to itself: in a writer's turn, so that a burst on a new file finds it changed by
        // the first in line instead of all of them retrying at once.
        try connection.inWritersTurn { () throws(ClaimError) in
            try changeJournalMode(to: wanted, busyTimeoutMs: busyTimeoutMs)
        }
    }

    private func changeJournalMode(to wanted: String, busyTimeoutMs: Int) throws(ClaimError) {
        let deadline = Clock.monotonicNs() + UInt64(busyTimeoutMs) * 1_000_000
        var attempt: UInt32 = 0
        while true {
            do throws(SQLiteError) {
                let current = try connection.query("PRAGMA journal_mode").first?.first ?? nil
                if current == wanted { return }
                let set = try connection.query("PRAGMA journal_mode=\(wanted)").first?.first ?? nil
                if set == wanted { return }
                throw SQLiteError(code: SQLITE_BUSY, message: "journal mode stayed \(set ?? "unknown")", sql: nil)
            } catch {
                guard error.primaryCode == SQLITE_BUSY || error.primaryCode == SQLITE_LOCKED,
                    Clock.monotonicNs() < deadline
                else { throw error.claimError(context: "journal_mode") }
            }
            attempt += 1
            // Short randomized sleeps: a program outside the queue (another service, the sqlite3 shell) may hold it.
            usleep(500 + arc4random_uniform(min(attempt, 20) * 500))
        }
    }

    func migrate(from version: Int) throws(ClaimError) {
        if version == SQLiteStore.schemaVersion { return }
        try connection.writeTransaction { () throws(ClaimError) in
            // Another process may have migrated while we waited for the lock.
            let locked = try currentVersion()
            if !(0...SQLiteStore.schemaVersion).contains(locked) {
                throw StoreFailure.unknownSchema(found: locked, known: SQLiteStore.schemaVersion).error()
            }
            for step in SQLiteStore.migrations[locked...] {
                for statement in step {
                    do throws(SQLiteError) { try connection.query(statement) } catch {
                        throw error.claimError(context: "migrate")
                    }
                }
            }
            do throws(SQLiteError) {
                try connection.query("PRAGMA user_version=\(SQLiteStore.schemaVersion)")
            } catch {
                throw error.claimError(context: "migrate")
            }
        }
    }

    func currentVersion() throws(ClaimError) -> Int {
        do throws(SQLiteError) {
            return Int(try connection.query("PRAGMA user_version").first?.first.flatMap { $0 } ?? "0") ?? 0
        } catch {
            throw error.claimError(context: "user_version")
        }
    }

    /// `migrations[v]` upgrades schema version v to v + 1.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE profiles (
                username TEXT PRIMARY KEY,
                claimed_by TEXT,
                claimed_at TEXT,
                verified_via TEXT,
                real_name TEXT,
                avatar_url TEXT,
                ranking INTEGER,
                solved_easy INTEGER,
                solved_medium INTEGER,
                solved_hard INTEGER,
                solved_all INTEGER,
                synced_at TEXT
            )
            """,
            "CREATE UNIQUE INDEX profiles_one_per_user ON profiles (claimed_by) WHERE claimed_by IS NOT NULL",
            """
            CREATE TABLE claim_events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                at TEXT NOT NULL,
                event TEXT NOT NULL,
                username TEXT NOT NULL,
                user_id TEXT NOT NULL,
                request_id TEXT,
                detail TEXT
            )
            """,
            """
            CREATE TRIGGER claim_events_append_only_update BEFORE UPDATE ON claim_events
            BEGIN SELECT RAISE(ABORT, 'claim_events is append-only'); END
            """,
            """
            CREATE TRIGGER claim_events_append_only_delete BEFORE DELETE ON claim_events
            BEGIN SELECT RAISE(ABORT, 'claim_events is append-only'); END
            """,
            """
            CREATE TABLE challenges (
                user_id TEXT NOT NULL,
                username TEXT NOT NULL,
                code TEXT NOT NULL UNIQUE,
                created_at TEXT NOT NULL,
                expires_at TEXT NOT NULL,
                PRIMARY KEY (user_id, username)
            )
            """,
        ],
        // Version 2: every challenge request deletes expired challenges; without this it scans the table.
        ["CREATE INDEX challenges_expiry ON challenges (expires_at)"],
        // Version 3: the abuse limits (Limits.swift). One row per LeetCode request slot of the last hour, numbered
        // in the order they were taken (the rowid), and the breaker's one row, its state one JSON text: every
        // process reads it, and SQLite prepares a statement in about 7k instructions more per column.
        [
            """
            CREATE TABLE leetcode_requests (
                seq INTEGER PRIMARY KEY,
                at TEXT NOT NULL,
                user_id TEXT NOT NULL
            )
            """,
            "CREATE INDEX leetcode_requests_user ON leetcode_requests (user_id, at)",
            """
            CREATE TABLE leetcode_breaker (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                state TEXT NOT NULL
            )
            """,
            "INSERT INTO leetcode_breaker (id, state) VALUES (1, '{}')",
        ],
    ]
}
