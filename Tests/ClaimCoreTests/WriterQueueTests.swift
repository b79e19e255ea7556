import Foundation
import Testing

@testable import ClaimCore

@Suite struct WriterQueueTests {
    // Only paths that never wait: a waiting writer is woken by SIGALRM, which in this multi-threaded test process
    // could land on another thread. The waiting path is tested through the binary (test_store_faults.py).
    @Test func aSecondWriterWithNoTimeLeftIsRefusedUntilTheFirstLeaves() throws {
        try withTemporaryFolder { folder in
            let path = folder + "/claims.sqlite"
            #expect(FileManager.default.createFile(atPath: path, contents: Data()))
            let first = WriterQueue(path: path)
            let second = WriterQueue(path: path)
            #expect(first.enter(deadlineNs: Clock.monotonicNs()))
            #expect(!second.enter(deadlineNs: Clock.monotonicNs()))
            first.leave()
            #expect(second.enter(deadlineNs: Clock.monotonicNs()))
            second.leave()
        }
    }

    /// setitimer refuses a tv_usec of 1,000,000 (EINVAL), which left a wait of a whole number of seconds with no
    /// timer to end it.
    @Test(arguments: [
        (UInt64(3_000_000_000), 3, 0), (1, 0, 1), (999, 0, 1), (1_000, 0, 1), (1_001, 0, 2),
        (2_999_999_001, 3, 0), (2_999_999_000, 2, 999_999), (600_000_000_000, 600, 0),
    ])
    func theAlarmIsAValidTimerThatRoundsUp(nanoseconds: UInt64, seconds: Int, micros: Int) {
        let timer = WriterQueue.alarm(in: nanoseconds)
        #expect(timer.it_value.tv_sec == seconds && timer.it_value.tv_usec == micros)
        #expect((0..<1_000_000).contains(timer.it_value.tv_usec))
        #expect(timer.it_interval.tv_sec == 0 && timer.it_interval.tv_usec > 0)
    }

    @Test func withoutTheFileThereIsNoQueueOnlySQLitesLocking() throws {
        try withTemporaryFolder { folder in
            let queue = WriterQueue(path: folder + "/missing.sqlite")
            #expect(queue.enter(deadlineNs: 0))
            queue.leave()
        }
    }

    @Test func theWALIsTruncatedOnceItHoldsCheckpointFrames() throws {
        try withTemporaryFolder { folder in
            let path = folder + "/claims.sqlite"
            let environment = ["CLAIM_DB": path, "CLAIM_BUSY_TIMEOUT_MS": "1000"]
            let store = try SQLiteStore(config: try Config.load({ environment[$0] }, storageOnly: true))
            var largest = 0
            var truncated = 0
            var previous = 0
            for i in 0..<300 {
                _ = try store.claim(
                    username: "name-\(i)", userID: "user-\(i)", verifiedVia: "none", requestID: nil, nowMs: 0)
                let size = (try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
                largest = max(largest, size)
                if size < previous { truncated += 1 }
                previous = size
            }
            let frame = 4096 + 24
            #expect(largest <= 32 + Int(SQLiteConnection.checkpointFrames + 24) * frame)
            #expect(truncated >= 300 * 5 / 64)
        }
    }

    @Test func aStorePreparedOnFirstUseTouchesNothingUntilItsFirstWrite() throws {
        try withTemporaryFolder { folder in
            let path = folder + "/claims.sqlite"
            let environment = ["CLAIM_DB": path, "CLAIM_BUSY_TIMEOUT_MS": "1000"]
            let config = try Config.load({ environment[$0] }, storageOnly: true)
            let store = try SQLiteStore(config: config, prepareOnFirstUse: true)
            #expect(try store.connection.query("PRAGMA user_version") == [["0"]])
            #expect(try store.connection.query("PRAGMA journal_mode") == [["delete"]])
            _ = try store.claim(username: "alice", userID: "u1", verifiedVia: "none", requestID: nil, nowMs: 0)
            #expect(try store.connection.query("PRAGMA user_version") == [[String(SQLiteStore.schemaVersion)]])
            #expect(try store.connection.query("PRAGMA journal_mode") == [["wal"]])
        }
    }

    @Test func aNewerSchemaIsRefusedAtFirstUse() throws {
        try withTemporaryFolder { folder in
            let path = folder + "/claims.sqlite"
            try SQLiteConnection(path: path, busyTimeoutMs: 1000).query("PRAGMA user_version=9")
            let environment = ["CLAIM_DB": path, "CLAIM_BUSY_TIMEOUT_MS": "1000"]
            let store = try SQLiteStore(
                config: try Config.load({ environment[$0] }, storageOnly: true), prepareOnFirstUse: true)
            let error = try #require(throws: ClaimError.self) { _ = try store.owner(of: "alice") }
            #expect(error.code == .storeUnavailable)
            #expect(try store.connection.query("PRAGMA user_version") == [["9"]])
        }
    }
}
