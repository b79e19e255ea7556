import CSQLite

#if canImport(Glibc)
import Glibc
#endif

/// A failed SQLite call: the extended result code, SQLite's message and the SQL, never the bound values.
struct SQLiteError: Error, CustomStringConvertible {
    var code: Int32
    var message: String
    var sql: String?

    /// SQLITE_CONSTRAINT_UNIQUE, a macro Swift does not import.
    static let constraintUnique: Int32 = SQLITE_CONSTRAINT | (8 << 8)

    var primaryCode: Int32 { code & 0xFF }
    var description: String { "SQLite error \(code): \(message)" + (sql.map { " in `\($0)`" } ?? "") }

    /// The contract error for a storage failure: which `StoreFailure` this is. Only the codes we branch on are named.
    func claimError(context: String) -> ClaimError {
        let failure: StoreFailure
        switch primaryCode {
        case SQLITE_BUSY, SQLITE_LOCKED: failure = .busy
        case SQLITE_READONLY: failure = .readOnly
        case SQLITE_FULL: failure = .full
        case SQLITE_CORRUPT, SQLITE_NOTADB: failure = .corrupt
        case SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_AUTH: failure = .cannotOpen
        case SQLITE_IOERR: failure = .ioFailure
        default: failure = .failed
        }
        return failure.error(detail: "\(context): \(description)", underlying: self)
    }
}

/// One SQLite connection. Statements are prepared, run and finalized inside a single call.
final class SQLiteConnection {
    private let handle: OpaquePointer
    /// Its descriptor is closed after `deinit` has closed SQLite (stored properties go after the body runs).
    private let queue: WriterQueue
    /// CLAIM_BUSY_TIMEOUT_MS.
    private let configuredBusyTimeoutMs: Int
    /// When the current invocation must be answered (a Lambda deadline); nil in a process per request.
    var answerBy: Deadline?
    /// The busy timeout SQLite's handler was last given; -1 before the first statement.
    private var armedBusyTimeoutMs = -1
    /// The number of frames in the WAL after the last commit (WAL mode), written by SQLite's WAL hook.
    private let walFrames = UnsafeMutablePointer<Int32>.allocate(capacity: 1)

    /// After a commit that leaves this many WAL frames or more (a claim writes about 5), the WAL is checkpointed
    /// and truncated. Processes do not checkpoint when they close: that cost 3 of a claim's 5 fsyncs, and deleted
    /// `-wal` and `-shm` for the next process to create again. But a WAL that only grows makes every process that
    /// opens the file alone rebuild its index from all of it (~5,000 instructions and a read per 4 KiB frame), and
    /// it never restarts. A checkpoint costs 3 fsyncs (~130 µs each here); 40 frames balances the two at ~0.1 ms per
    /// claim, where 100 frames cost ~0.15 ms and 300 frames ~0.4 ms (BENCHMARKS.md).
    static let checkpointFrames: Int32 = 40

    /// Opens (creating if missing) the database at `path` with extended result codes on.
    init(path: String, busyTimeoutMs: Int) throws(SQLiteError) {
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            // sqlite3_open_v2 returns a handle even on failure; it must still be closed.
            sqlite3_close_v2(db)
            walFrames.deallocate()
            throw SQLiteError(code: rc, message: message, sql: nil)
        }
        handle = db
        queue = WriterQueue(path: path)
        configuredBusyTimeoutMs = busyTimeoutMs
        walFrames.initialize(to: 0)
        sqlite3_extended_result_codes(db, 1)
        csqlite_no_checkpoint_on_close(db)
        csqlite_count_wal_frames(db, walFrames)
    }

    /// The longest a wait that starts now may last: the busy timeout, or less when the invocation's answer is due
    /// sooner (`Deadline.capping`), so that a wait after a slow LeetCode exchange still ends in time.
    var busyTimeoutMs: Int { answerBy?.capping(configuredBusyTimeoutMs) ?? configuredBusyTimeoutMs }

    /// Gives SQLite's busy handler what is left of the current budget before a statement
    /// (https://sqlite.org/c3ref/busy_timeout.html): the writers' turn when this process holds one, so that BEGIN,
    /// every statement and COMMIT share the turn's one budget; else a fresh busy timeout. Set only when it changed.
    private func armBusyTimeout() {
        var ms = busyTimeoutMs
        if let turnDeadline {
            let now = Clock.monotonicNs()
            ms = turnDeadline > now ? Int((turnDeadline - now) / 1_000_000) : 0
        }
        guard ms != armedBusyTimeoutMs else { return }
        sqlite3_busy_timeout(handle, Int32(clamping: ms))
        armedBusyTimeoutMs = ms
    }

    deinit {
        // SQLite first: the queue's descriptor must outlive SQLite's locks (see `WriterQueue`).
        sqlite3_close_v2(handle)
        walFrames.deallocate()
    }

    /// True when SQLite could open the file only for reading (file or folder permissions).
    var isReadOnly: Bool { sqlite3_db_readonly(handle, "main") == 1 }

    /// The rowid of the row this connection inserted last (https://sqlite.org/c3ref/last_insert_rowid.html).
    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    private func error(_ rc: Int32, _ sql: String) -> SQLiteError {
        SQLiteError(code: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)), sql: sql)
            .withCode(rc)
    }

    /// Runs `sql` with `bindings` and returns every row as text columns (NULL → nil).
    @discardableResult
    func query(_ sql: String, _ bindings: [String?] = []) throws(SQLiteError) -> [[String?]] {
        armBusyTimeout()
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error(rc, sql) }
        defer { sqlite3_finalize(statement) }
        for (i, value) in bindings.enumerated() {
            let bound: Int32
            if let value {
                // With its byte count: -1 would stop at an embedded NUL and store less than was given.
                bound = sqlite3_bind_text(statement, Int32(i + 1), value, Int32(value.utf8.count), csqlite_transient())
            } else {
                bound = sqlite3_bind_null(statement, Int32(i + 1))
            }
            guard bound == SQLITE_OK else { throw error(bound, sql) }
        }
        var rows: [[String?]] = []
        while true {
            let step = sqlite3_step(statement)
            if step == SQLITE_DONE { return rows }
            guard step == SQLITE_ROW else { throw error(step, sql) }
            let count = sqlite3_column_count(statement)
            rows.append(
                (0..<count).map { column in
                    sqlite3_column_text(statement, column).map { String(cString: $0) }
                })
        }
    }

    /// Runs `body` in this process's turn among the writers (see `WriterQueue`), waited for within the busy
    /// timeout; nested calls share the outer turn and its deadline.
    /// - Throws: `store_busy` when no turn came in time.
    func inWritersTurn<T>(_ body: () throws(ClaimError) -> T) throws(ClaimError) -> T {
        if turnDeadline != nil { return try body() }
        let deadline = Clock.monotonicNs() + UInt64(busyTimeoutMs) * 1_000_000
        guard queue.enter(deadlineNs: deadline) else {
            throw SQLiteError(code: SQLITE_BUSY, message: "no turn in the writers' queue in time", sql: nil)
                .claimError(context: "begin")
        }
        turnDeadline = deadline
        defer {
            turnDeadline = nil
            queue.leave()
        }
        return try body()
    }

    /// The deadline of the writers' turn this process holds, if it holds one.
    private var turnDeadline: UInt64?

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT` in this process's turn among the writers, rolling back on any
    /// error and rethrowing the first one. The turn and SQLite's write lock share one budget, the busy timeout.
    func writeTransaction<T>(_ body: () throws(ClaimError) -> T) throws(ClaimError) -> T {
        try inWritersTurn { () throws(ClaimError) -> T in
            do throws(SQLiteError) {
                // What is left of the turn's budget, for a lock held by another program (`armBusyTimeout`).
                try query("BEGIN IMMEDIATE")
            } catch {
                throw error.claimError(context: "begin")
            }
            let result: T
            do throws(ClaimError) {
                result = try body()
            } catch {
                rollback()
                throw error
            }
            do throws(SQLiteError) {
                try query("COMMIT")
            } catch {
                rollback()
                throw error.claimError(context: "commit")
            }
            checkpointIfLarge()
            return result
        }
    }

    /// Checkpoints and truncates a WAL of `checkpointFrames` or more, without waiting: when a reader still needs the
    /// WAL, SQLite copies what it can and the next commit tries again. The commit is durable already; the result does
    /// not change the answer (https://sqlite.org/c3ref/wal_checkpoint_v2.html).
    private func checkpointIfLarge() {
        guard walFrames.pointee >= SQLiteConnection.checkpointFrames else { return }
        walFrames.pointee = 0
        sqlite3_busy_timeout(handle, 0)
        armedBusyTimeoutMs = 0
        sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_TRUNCATE, nil, nil)
    }

    /// Rolls back the transaction in progress, if any.
    func rollback() {
        if sqlite3_get_autocommit(handle) == 0 { _ = try? query("ROLLBACK") }
    }
}

extension SQLiteError {
    /// Keeps the extended code when SQLite reported one for this failure, else the returned code.
    fileprivate func withCode(_ rc: Int32) -> SQLiteError {
        var copy = self
        if copy.code & 0xFF != rc & 0xFF { copy.code = rc }
        return copy
    }
}
