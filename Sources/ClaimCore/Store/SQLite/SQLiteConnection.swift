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

    /// Opens (creating if missing) the database at `path` with extended result codes on.
    init(path: String, busyTimeoutMs: Int) throws(SQLiteError) {
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            // sqlite3_open_v2 returns a handle even on failure; it must still be closed.
            sqlite3_close_v2(db)
            throw SQLiteError(code: rc, message: message, sql: nil)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, Int32(busyTimeoutMs))
    }

    deinit { sqlite3_close_v2(handle) }

    /// True when SQLite could open the file only for reading (file or folder permissions).
    var isReadOnly: Bool { sqlite3_db_readonly(handle, "main") == 1 }

    private func error(_ rc: Int32, _ sql: String) -> SQLiteError {
        SQLiteError(code: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)), sql: sql)
            .withCode(rc)
    }

    /// Runs `sql` with `bindings` and returns every row as text columns (NULL → nil).
    @discardableResult
    func query(_ sql: String, _ bindings: [String?] = []) throws(SQLiteError) -> [[String?]] {
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

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`, rolling back on any error and rethrowing the first one.
    func writeTransaction<T>(_ body: () throws(ClaimError) -> T) throws(ClaimError) -> T {
        do {
            try query("BEGIN IMMEDIATE")
        } catch {
            throw error.claimError(context: "begin")
        }
        let result: T
        do {
            result = try body()
        } catch {
            rollback()
            throw error
        }
        do {
            try query("COMMIT")
        } catch {
            rollback()
            throw error.claimError(context: "commit")
        }
        return result
    }

    private func rollback() {
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
