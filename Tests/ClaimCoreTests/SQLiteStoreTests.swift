import Foundation
import Testing

@testable import ClaimCore

/// Runs `body` with a new empty folder and removes the folder afterwards, whatever happens.
func withTemporaryFolder<T>(_ body: (String) throws -> T) throws -> T {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("claim-core-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// 2026-11-29T23:59:01.123Z.
private let t0: Int64 = 1_795_996_741_123

@Suite struct SQLiteStoreTests {
    private static func config(_ path: String, journal: Config.Journal = .wal, sync: Config.Sync = .full) throws
        -> Config
    {
        let environment = [
            "CLAIM_DB": path, "CLAIM_JOURNAL": journal.rawValue, "CLAIM_SYNC": sync.rawValue,
            "CLAIM_BUSY_TIMEOUT_MS": "1000",
        ]
        return try Config.load({ environment[$0] }, storageOnly: true)
    }

    /// Runs `body` with a store on a new database file in its own temporary folder.
    private func withStore(_ body: (SQLiteStore, String) throws -> Void) throws {
        try withTemporaryFolder { folder in
            let path = folder + "/claims.sqlite"
            try body(try SQLiteStore(config: try Self.config(path)), path)
        }
    }

    /// `claim_events` as rows of (event, username, user_id, request_id, at), oldest first.
    private func events(_ store: SQLiteStore) throws -> [[String?]] {
        try store.connection.query("SELECT event, username, user_id, request_id, at FROM claim_events ORDER BY id")
    }

    /// The raw `profiles` row of `username`: (claimed_by, claimed_at, verified_via).
    private func profileRow(_ store: SQLiteStore, _ username: String) throws -> [[String?]] {
        try store.connection.query(
            "SELECT claimed_by, claimed_at, verified_via FROM profiles WHERE username = ?1", [username])
    }

    @Test func createsMissingParentFolders() throws {
        try withTemporaryFolder { folder in
            let path = folder + "/a/b/c/claims.sqlite"
            #expect(!FileManager.default.fileExists(atPath: folder + "/a"))
            let store = try SQLiteStore(config: try Self.config(path))
            var isFolder: ObjCBool = false
            #expect(FileManager.default.fileExists(atPath: folder + "/a/b/c", isDirectory: &isFolder))
            #expect(isFolder.boolValue)
            #expect(FileManager.default.fileExists(atPath: path))
            #expect(try store.connection.query("PRAGMA user_version") == [[String(SQLiteStore.schemaVersion)]])
        }
    }

    @Test func parentThatIsAFileIsStoreUnavailable() throws {
        try withTemporaryFolder { folder in
            #expect(FileManager.default.createFile(atPath: folder + "/file", contents: Data("x".utf8)))
            let error = try #require(throws: ClaimError.self) {
                _ = try SQLiteStore(config: try Self.config(folder + "/file/sub/claims.sqlite"))
            }
            #expect(error.code == .storeUnavailable)
            #expect(error.message == "the claim database's folder cannot be created")
        }
    }

    @Test func claimOfANewUsername() throws {
        try withStore { store, _ in
            let claim = try store.claim(
                username: "alice", userID: "u1", verifiedVia: "none", requestID: "r1", nowMs: t0)
            #expect(
                claim
                    == Claim(
                        username: "alice", claimedBy: "u1", claimedAt: "2026-11-29T23:59:01.123Z", verifiedVia: "none"))
            #expect(try events(store) == [["claim", "alice", "u1", "r1", "2026-11-29T23:59:01.123Z"]])
            #expect(try profileRow(store, "alice") == [["u1", "2026-11-29T23:59:01.123Z", "none"]])
            #expect(try store.owner(of: "alice") == claim)
        }
    }

    @Test func claimAgainBySameUserIsIdempotentAndLoggedAsReverify() throws {
        try withStore { store, _ in
            let first = try store.claim(username: "alice", userID: "u1", verifiedVia: "none", requestID: nil, nowMs: t0)
            let again = try store.claim(
                username: "alice", userID: "u1", verifiedVia: "leetcode", requestID: "r2", nowMs: t0 + 60_000)
            #expect(again.claimedAt == first.claimedAt)
            #expect(again.claimedBy == "u1")
            #expect(again.verifiedVia == "leetcode")
            #expect(
                try events(store) == [
                    ["claim", "alice", "u1", nil, Clock.rfc3339(ms: t0)],
                    ["reverify", "alice", "u1", "r2", Clock.rfc3339(ms: t0 + 60_000)],
                ])
        }
    }

    /// The event kind comes from the owner before the upsert, not from timestamps: a re-claim within the same
    /// millisecond (or after the clock stepped back) is still a 'reverify'.
    @Test func claimAgainInTheSameMillisecondIsStillAReverify() throws {
        try withStore { store, _ in
            _ = try store.claim(username: "alice", userID: "u1", verifiedVia: "none", requestID: nil, nowMs: t0)
            _ = try store.claim(username: "alice", userID: "u1", verifiedVia: "none", requestID: nil, nowMs: t0)
            let kinds = try events(store).map { $0[0] }
            #expect(kinds == ["claim", "reverify"])
        }
    }

    @Test func claimByAnotherUserIsAlreadyClaimedAndChangesNothing() throws {
        try withStore { store, _ in
            let original = try store.claim(
                username: "alice", userID: "u1", verifiedVia: "none", requestID: nil, nowMs: t0)
            let error = try #require(throws: ClaimError.self) {
                _ = try store.claim(
                    username: "alice", userID: "u2", verifiedVia: "leetcode", requestID: "r", nowMs: t0 + 1)
            }
            #expect(error.code == .alreadyClaimed)
            #expect(error.code.status == 409)
            #expect(try store.owner(of: "alice") == original)
            #expect(try profileRow(store, "alice") == [["u1", Clock.rfc3339(ms: t0), "none"]])
            #expect(try events(store).count == 1)
        }
    }

    /// The guard's "no" is the upsert returning no row: nothing else tells `already_claimed` apart.
    @Test func guardedUpsertReturnsNoRowWhenTheGuardSaysNo() throws {
        try withStore { store, _ throws in
            let bindings = ["alice", "u1", Clock.rfc3339(ms: t0), "none"]
            #expect(
                try store.connection.query(SQLiteStore.claimSQL, bindings) == [["u1", Clock.rfc3339(ms: t0), "none"]])
            let other = ["alice", "u2", Clock.rfc3339(ms: t0 + 1), "leetcode"]
            #expect(try store.connection.query(SQLiteStore.claimSQL, other) == [])
            #expect(try profileRow(store, "alice") == [["u1", Clock.rfc3339(ms: t0), "none"]])
            // The owner passes the guard and keeps the original claimed_at.
            let own = ["alice", "u1", Clock.rfc3339(ms: t0 + 2), "leetcode"]
            #expect(
                try store.connection.query(SQLiteStore.claimSQL, own) == [["u1", Clock.rfc3339(ms: t0), "leetcode"]])
        }
    }

    @Test func secondUsernameForTheSameUserIsUserHasOtherProfile() throws {
        try withStore { store, _ in
            _ = try store.claim(username: "alice", userID: "u1", verifiedVia: "none", requestID: nil, nowMs: t0)
            let error = try #require(throws: ClaimError.self) {
                _ = try store.claim(username: "bob", userID: "u1", verifiedVia: "none", requestID: nil, nowMs: t0 + 1)
            }
            #expect(error.code == .userHasOtherProfile)
            #expect(try store.owner(of: "bob") == nil)
            #expect(try profileRow(store, "bob") == [])
            #expect(try events(store).count == 1)
        }
    }

    @Test func previouslyReleasedUsernameForAUserWithAProfileIsUserHasOtherProfile() throws {
        try withStore { store, _ in
            _ = try store.claim(username: "bob", userID: "u2", verifiedVia: "none", requestID: nil, nowMs: t0)
            try store.release(username: "bob", userID: "u2", requestID: nil, nowMs: t0 + 1)
            _ = try store.claim(username: "alice", userID: "u1", verifiedVia: "none", requestID: nil, nowMs: t0 + 2)
            let error = try #require(throws: ClaimError.self) {
                _ = try store.claim(username: "bob", userID: "u1", verifiedVia: "none", requestID: nil, nowMs: t0 + 3)
            }
            #expect(error.code == .userHasOtherProfile)
            #expect(try profileRow(store, "bob") == [[nil, nil, nil]])
        }
    }

    @Test func releaseByOwnerFreesTheUsername() throws {
        try withStore { store, _ in
            _ = try store.claim(username: "alice", userID: "u1", verifiedVia: "none", requestID: nil, nowMs: t0)
            try store.release(username: "alice", userID: "u1", requestID: "rel", nowMs: t0 + 5)
            #expect(try store.owner(of: "alice") == nil)
            #expect(try events(store).last == ["release", "alice", "u1", "rel", Clock.rfc3339(ms: t0 + 5)])
            // Free again: another user claims it with a new claimed_at, logged as a claim.
            let next = try store.claim(
                username: "alice", userID: "u2", verifiedVia: "none", requestID: nil, nowMs: t0 + 9)
            #expect(next.claimedBy == "u2")
            #expect(next.claimedAt == Clock.rfc3339(ms: t0 + 9))
            #expect(try events(store).map { $0[0] } == ["claim", "release", "claim"])
        }
    }

    @Test func releaseByAnotherUserIsNotOwner() throws {
        try withStore { store, _ in
            let claim = try store.claim(username: "alice", userID: "u1", verifiedVia: "none", requestID: nil, nowMs: t0)
            let error = try #require(throws: ClaimError.self) {
                try store.release(username: "alice", userID: "u2", requestID: nil, nowMs: t0 + 1)
            }
            #expect(error.code == .notOwner)
            #expect(try store.owner(of: "alice") == claim)
            #expect(try events(store).count == 1)
        }
    }

    @Test func releaseOfAFreeUsernameIsNotClaimed() throws {
        try withStore { store, _ in
            let never = try #require(throws: ClaimError.self) {
                try store.release(username: "nobody", userID: "u1", requestID: nil, nowMs: t0)
            }
            #expect(never.code == .notClaimed)
            _ = try store.claim(username: "alice", userID: "u1", verifiedVia: "none", requestID: nil, nowMs: t0)
            try store.release(username: "alice", userID: "u1", requestID: nil, nowMs: t0 + 1)
            let twice = try #require(throws: ClaimError.self) {
                try store.release(username: "alice", userID: "u1", requestID: nil, nowMs: t0 + 2)
            }
            #expect(twice.code == .notClaimed)
            #expect(try events(store).map { $0[0] } == ["claim", "release"])
        }
    }

    @Test(arguments: [
        "UPDATE claim_events SET event = 'tampered'",
        "DELETE FROM claim_events",
        "DELETE FROM claim_events WHERE id = 1",
    ])
    func claimEventsAreAppendOnly(sql: String) throws {
        try withStore { store, _ in
            _ = try store.claim(username: "alice", userID: "u1", verifiedVia: "none", requestID: nil, nowMs: t0)
            let before = try events(store)
            let error = try #require(throws: SQLiteError.self) { try store.connection.query(sql) }
            #expect(error.primaryCode == 19)  // SQLITE_CONSTRAINT, from RAISE(ABORT, ...)
            #expect(error.message == "claim_events is append-only")
            #expect(try events(store) == before)
        }
    }

    @Test func newerSchemaVersionIsStoreUnavailable() throws {
        try withTemporaryFolder { folder in
            let path = folder + "/claims.sqlite"
            do {
                let connection = try SQLiteConnection(path: path, busyTimeoutMs: 1000)
                try connection.query("PRAGMA user_version=99")
            }
            let error = try #require(throws: ClaimError.self) { _ = try SQLiteStore(config: try Self.config(path)) }
            #expect(error.code == .storeUnavailable)
            #expect(error.message.contains("99"))
            #expect(error.message.contains(String(SQLiteStore.schemaVersion)))
            #expect(
                error.message
                    == "the claim database has schema version 99, newer than this binary's version \(SQLiteStore.schemaVersion)"
            )
            // Nothing was created in the newer database.
            let check = try SQLiteConnection(path: path, busyTimeoutMs: 1000)
            #expect(try check.query("SELECT name FROM sqlite_schema") == [])
            #expect(try check.query("PRAGMA user_version") == [["99"]])
            // Not even the journal mode was switched to the configured wal.
            #expect(try check.query("PRAGMA journal_mode") == [["delete"]])
        }
    }

    @Test(arguments: [Config.Journal.wal, .delete])
    func notADatabaseIsStoreUnavailableAndLeftAlone(journal: Config.Journal) throws {
        try withTemporaryFolder { folder in
            let path = folder + "/claims.sqlite"
            var generator = SplitMix64(seed: 42)
            let bytes = (0..<4096).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            #expect(!bytes.starts(with: Array("SQLite format 3".utf8)))
            #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
            let error = try #require(throws: ClaimError.self) {
                _ = try SQLiteStore(config: try Self.config(path, journal: journal))
            }
            #expect(error.code == .storeUnavailable)
            #expect(error.message == "the claim database file is corrupt or not a database")
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(bytes))
        }
    }

    @Test(arguments: [(Config.Journal.wal, "wal"), (.delete, "delete")])
    func journalModeIsSet(journal: Config.Journal, expected: String) throws {
        try withTemporaryFolder { folder in
            let path = folder + "/claims.sqlite"
            let store = try SQLiteStore(config: try Self.config(path, journal: journal))
            #expect(try store.connection.query("PRAGMA journal_mode") == [[expected]])
        }
    }

    @Test func journalModeOfAnExistingDatabaseIsChanged() throws {
        try withTemporaryFolder { folder in
            let path = folder + "/claims.sqlite"
            do {
                let wal = try SQLiteStore(config: try Self.config(path, journal: .wal))
                _ = try wal.claim(username: "alice", userID: "u1", verifiedVia: "none", requestID: nil, nowMs: t0)
            }
            let delete = try SQLiteStore(config: try Self.config(path, journal: .delete))
            #expect(try delete.connection.query("PRAGMA journal_mode") == [["delete"]])
            #expect(try delete.owner(of: "alice")?.claimedBy == "u1")
            let wal = try SQLiteStore(config: try Self.config(path, journal: .wal))
            #expect(try wal.connection.query("PRAGMA journal_mode") == [["wal"]])
        }
    }

    @Test(arguments: [(Config.Sync.full, "2"), (.normal, "1")])
    func synchronousIsSet(sync: Config.Sync, expected: String) throws {
        try withTemporaryFolder { folder in
            let store = try SQLiteStore(config: try Self.config(folder + "/claims.sqlite", sync: sync))
            #expect(try store.connection.query("PRAGMA synchronous") == [[expected]])
        }
    }

    @Test func reopeningKeepsDataAndSchemaVersion() throws {
        try withTemporaryFolder { folder in
            let path = folder + "/claims.sqlite"
            let claim = try SQLiteStore(config: try Self.config(path))
                .claim(username: "alice", userID: "u1", verifiedVia: "none", requestID: nil, nowMs: t0)
            let reopened = try SQLiteStore(config: try Self.config(path))
            #expect(try reopened.owner(of: "alice") == claim)
            #expect(try reopened.connection.query("PRAGMA user_version") == [[String(SQLiteStore.schemaVersion)]])
        }
    }
}

/// A small deterministic generator (https://prng.di.unimi.it/splitmix64.c) so the "random" file is the same
/// in every run.
private struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
