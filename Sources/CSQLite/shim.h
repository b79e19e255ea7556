#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro casting -1 to a function pointer; Swift cannot import it.
static inline sqlite3_destructor_type csqlite_transient(void) { return SQLITE_TRANSIENT; }

// sqlite3_db_config is variadic, which Swift cannot call. With this, the last connection to close leaves the WAL
// as it is instead of checkpointing it and deleting -wal and -shm (https://sqlite.org/c3ref/c_dbconfig_defensive.html
// #sqlitedbconfignockptonclose): the store checkpoints by size instead (SQLiteConnection.checkpointIfLarge).
static inline int csqlite_no_checkpoint_on_close(sqlite3 *db) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
}

static int csqlite_store_frames(void *frames, sqlite3 *db, const char *schema, int count) {
    (void)db;
    (void)schema;
    *(int *)frames = count;
    return SQLITE_OK;
}

// After each commit in WAL mode, *frames is the number of frames in the WAL. This replaces SQLite's automatic
// checkpoint, which is itself a WAL hook (https://sqlite.org/c3ref/wal_hook.html).
static inline void csqlite_count_wal_frames(sqlite3 *db, int *frames) {
    sqlite3_wal_hook(db, csqlite_store_frames, frames);
}
