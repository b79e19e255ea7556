/* The C floor for leetcode-claim's function mode: the least a process can do to answer one request durably.
 *
 * Same SQLite work as Sources/ClaimCore: the schema text byte for byte, PRAGMA user_version handling,
 * busy_timeout, journal_mode WAL, synchronous FULL, the writers' queue (an exclusive flock on the database file from
 * before BEGIN IMMEDIATE to after COMMIT), the guarded upsert + audit event inside BEGIN IMMEDIATE, the status
 * SELECT, no checkpoint when the connection closes but a TRUNCATE checkpoint after a commit that leaves 40 WAL
 * frames or more, sqlite3_close_v2 before answering. Same stdin and stdout shape, one stderr log line. Left out on
 * purpose: a real JSON parser (it trusts its input: flat object, string values, no escapes), validation beyond
 * the username rule, JWT, LeetCode, challenge and release. "Invalid JSON" here means "does not start with {",
 * answered 400 before any getenv or database work.
 *
 *   gcc -O2 -static -o floor bench/floor.c -lsqlite3 -lm
 *   echo '{"action":"verify","username":"alice","user_id":"u1"}' | CLAIM_AUTH=trusted CLAIM_VERIFY=off ./floor
 *
 * Knobs for profiling, all off in the benchmark:
 *   FLOOR_NO_CLOSE=1  exit without sqlite3_close_v2 (it changes little now that closing does not checkpoint).
 *   FLOOR_CHECKPOINT_FRAMES=N  checkpoint (TRUNCATE) after a commit that leaves N WAL frames or more (default
 *                     40, as SQLiteConnection.checkpointFrames); 0 restores SQLite's defaults, which the store
 *                     used before: the last connection to close checkpoints and deletes -wal and -shm.
 *   FLOOR_TRACE=1     one stderr line per step: "floor-trace <step> <microseconds>"
 */
#include <fcntl.h>
#include <sys/file.h>
#include <errno.h>
#include <signal.h>
#include <sys/time.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_BYTES 65536
#define SCHEMA_VERSION 3 /* SQLiteStore.schemaVersion */

static char input[MAX_BYTES + 2];
static char out[4096];
static struct timespec started, last;
static int tracing;

/* FLOOR_TRACE: prints the time since the previous mark. */
static void mark(const char *step) {
    if (!tracing) return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    fprintf(stderr, "floor-trace %s %.1f\n", step,
            (now.tv_sec - last.tv_sec) * 1e6 + (now.tv_nsec - last.tv_nsec) / 1e3);
    last = now;
}

/* SQLiteStore.migrations, text byte for byte: schema[v] upgrades version v to v + 1 (NULL ends a step). */
static const char *schema[][8] = {
  {
    "CREATE TABLE profiles (\n"
    "    username TEXT PRIMARY KEY,\n"
    "    claimed_by TEXT,\n"
    "    claimed_at TEXT,\n"
    "    verified_via TEXT,\n"
    "    real_name TEXT,\n"
    "    avatar_url TEXT,\n"
    "    ranking INTEGER,\n"
    "    solved_easy INTEGER,\n"
    "    solved_medium INTEGER,\n"
    "    solved_hard INTEGER,\n"
    "    solved_all INTEGER,\n"
    "    synced_at TEXT\n"
    ")",
    "CREATE UNIQUE INDEX profiles_one_per_user ON profiles (claimed_by) WHERE claimed_by IS NOT NULL",
    "CREATE TABLE claim_events (\n"
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    at TEXT NOT NULL,\n"
    "    event TEXT NOT NULL,\n"
    "    username TEXT NOT NULL,\n"
    "    user_id TEXT NOT NULL,\n"
    "    request_id TEXT,\n"
    "    detail TEXT\n"
    ")",
    "CREATE TRIGGER claim_events_append_only_update BEFORE UPDATE ON claim_events\n"
    "BEGIN SELECT RAISE(ABORT, 'claim_events is append-only'); END",
    "CREATE TRIGGER claim_events_append_only_delete BEFORE DELETE ON claim_events\n"
    "BEGIN SELECT RAISE(ABORT, 'claim_events is append-only'); END",
    "CREATE TABLE challenges (\n"
    "    user_id TEXT NOT NULL,\n"
    "    username TEXT NOT NULL,\n"
    "    code TEXT NOT NULL UNIQUE,\n"
    "    created_at TEXT NOT NULL,\n"
    "    expires_at TEXT NOT NULL,\n"
    "    PRIMARY KEY (user_id, username)\n"
    ")",
    NULL,
  },
  {"CREATE INDEX challenges_expiry ON challenges (expires_at)", NULL},
  {
    "CREATE TABLE leetcode_requests (\n"
    "    seq INTEGER PRIMARY KEY,\n"
    "    at TEXT NOT NULL,\n"
    "    user_id TEXT NOT NULL\n"
    ")",
    "CREATE INDEX leetcode_requests_user ON leetcode_requests (user_id, at)",
    "CREATE TABLE leetcode_breaker (\n"
    "    id INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "    state TEXT NOT NULL\n"
    ")",
    "INSERT INTO leetcode_breaker (id, state) VALUES (1, '{}')",
    NULL,
  },
};

/* Byte for byte the SQL text of SQLiteStore.claimSQL / eventSQL, so SQLite parses the same statements. */
static const char *claim_sql =
    "INSERT INTO profiles (username, claimed_by, claimed_at, verified_via) VALUES (?1, ?2, ?3, ?4)\n"
    "ON CONFLICT (username) DO UPDATE SET\n"
    "    claimed_by = excluded.claimed_by,\n"
    "    claimed_at = CASE WHEN profiles.claimed_by = excluded.claimed_by\n"
    "        THEN profiles.claimed_at ELSE excluded.claimed_at END,\n"
    "    verified_via = excluded.verified_via\n"
    "WHERE profiles.claimed_by IS NULL OR profiles.claimed_by = excluded.claimed_by\n"
    "RETURNING claimed_by, claimed_at, verified_via";

static const char *event_sql =
    "INSERT INTO claim_events (at, event, username, user_id, request_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/* ---- the answer ---- */

static const char *action = NULL, *username = NULL, *user_id = NULL, *request_id = NULL;

/* Appends s as a JSON string (or null); escapes only what a trusted input can contain. */
static void put_str(char **p, const char *s) {
    if (!s) { *p += sprintf(*p, "null"); return; }
    *(*p)++ = '"';
    for (; *s && *p < out + sizeof out - 8; s++) {
        if (*s == '"' || *s == '\\') *(*p)++ = '\\';
        *(*p)++ = *s;
    }
    *(*p)++ = '"';
    **p = 0;
}

static void rfc3339(char buf[64]) {
    struct timespec ts;
    struct tm t;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &t);
    snprintf(buf, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour,
             t.tm_min, t.tm_sec, (int)(ts.tv_nsec / 1000000));
}

/* Writes the response line (result is a JSON object text or NULL), the log line, and exits. */
static void answer(int status, const char *result, const char *code, const char *message) {
    char *p = out;
    p += sprintf(p, "{\"ok\":%s,\"status\":%d,\"action\":", status == 200 ? "true" : "false", status);
    put_str(&p, action);
    p += sprintf(p, ",\"request_id\":");
    put_str(&p, request_id);
    if (result) {
        p += sprintf(p, ",\"result\":%s}\n", result);
    } else {
        p += sprintf(p, ",\"error\":{\"code\":\"%s\",\"message\":\"%s\"%s}}\n", code, message,
                     status == 503 ? ",\"retry_after_s\":1" : "");
    }
    if (write(1, out, p - out) < 0) { /* the reader is gone; the exit code still tells */ }

    struct timespec now;
    char at[64];
    clock_gettime(CLOCK_MONOTONIC, &now);
    rfc3339(at);
    double ms = (now.tv_sec - started.tv_sec) * 1e3 + (now.tv_nsec - started.tv_nsec) / 1e6;
    p = out;
    p += sprintf(p, "{\"time\":\"%s\",\"level\":\"%s\",\"request_id\":", at,
                 status >= 500 ? "error" : status >= 400 ? "warn" : "info");
    put_str(&p, request_id);
    p += sprintf(p, ",\"action\":");
    put_str(&p, action);
    p += sprintf(p, ",\"username\":");
    put_str(&p, username);
    p += sprintf(p, ",\"outcome\":\"%s\",\"status\":%d,\"duration_ms\":%.3f}\n", result ? "ok" : code, status, ms);
    if (write(2, out, p - out) < 0) { /* same */ }
    exit(status < 500 ? 0 : status == 503 ? 75 : strcmp(code, "misconfigured") == 0 ? 78 : 70);
}

/* ---- trivial JSON: find "key" : "value" in a flat object and cut the value in place ---- */

static const char *field(char *json, const char *key) {
    char pattern[32];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    char *k = strstr(json, pattern);
    if (!k) return NULL;
    char *v = strchr(k + strlen(pattern), '"');
    if (!v) return NULL;
    char *end = strchr(v + 1, '"');
    if (!end) return NULL;
    return v + 1;
}

/* ---- SQLite ---- */

static sqlite3 *db;
static int queue_fd = -1, wal_frames, checkpoint_frames = 40;

static int count_frames(void *frames, sqlite3 *handle, const char *schema, int n) {
    (void)handle, (void)schema;
    *(int *)frames = n;
    return SQLITE_OK;
}

static void on_alarm(int sig) { (void)sig; }

/* The writers' queue: an exclusive flock on the database file, waited for within busy_ms (SIGALRM ends the wait). */
static int enter_queue(int busy_ms) {
    if (queue_fd < 0 || flock(queue_fd, LOCK_EX | LOCK_NB) == 0) return 1;
    struct sigaction action = {0}, previous;
    action.sa_handler = on_alarm;
    sigaction(SIGALRM, &action, &previous);
    struct itimerval timer = {{0, 0}, {busy_ms / 1000, (busy_ms % 1000) * 1000 + 1}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &timer, NULL);
    int rc = flock(queue_fd, LOCK_EX);
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &previous, NULL);
    return rc == 0;
}

static void leave_queue(void) {
    if (queue_fd >= 0) flock(queue_fd, LOCK_UN);
}

static void checkpoint_if_large(int busy_ms) {
    if (!checkpoint_frames || wal_frames < checkpoint_frames) return;
    wal_frames = 0;
    sqlite3_busy_timeout(db, 0);
    sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    sqlite3_busy_timeout(db, busy_ms);
}

/* Prepares, binds (text or NULL), steps to the end, finalizes. Copies the first row's columns into row[] when
 * given. Returns SQLITE_ROW (a row came), SQLITE_DONE (none) or the error code. */
static int query(const char *sql, const char **binds, int nbinds, char row[][128], int ncols) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    for (int i = 0; i < nbinds; i++) {
        if (binds[i]) sqlite3_bind_text(st, i + 1, binds[i], -1, SQLITE_STATIC);
        else sqlite3_bind_null(st, i + 1);
    }
    int found = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (found++) continue;
        for (int c = 0; c < ncols; c++) {
            const unsigned char *t = sqlite3_column_text(st, c);
            if (t) snprintf(row[c], 128, "%s", t);
            else row[c][0] = 0;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sqlite3_extended_errcode(db);
    return found ? SQLITE_ROW : SQLITE_DONE;
}

static void store_failed(int rc) {
    int primary = rc & 0xFF;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
        answer(503, NULL, "store_busy", "the claim store is busy; retry shortly");
    answer(500, NULL, "store_unavailable", "the claim database failed");
}

static void rollback(void) {
    if (!sqlite3_get_autocommit(db)) query("ROLLBACK", NULL, 0, NULL, 0);
}

static int user_version(void) {
    char row[1][128];
    int rc = query("PRAGMA user_version", NULL, 0, row, 1);
    if (rc != SQLITE_ROW) store_failed(rc);
    return atoi(row[0]);
}

/* Open, pragmas, migration: what SQLiteStore.init does, each step once (it reads user_version twice). */
static void open_store(const char *path, int busy_ms, int full_sync, int wal) {
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                             NULL);
    if (rc != SQLITE_OK) store_failed(rc);
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, busy_ms);
    const char *frames = getenv("FLOOR_CHECKPOINT_FRAMES");
    if (frames) checkpoint_frames = atoi(frames);
    if (checkpoint_frames) {
        sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
        sqlite3_wal_hook(db, count_frames, &wal_frames);
    }
    queue_fd = open(path, O_RDONLY | O_CLOEXEC);
    mark("open");
    int version = user_version();
    mark("pragma_user_version");
    if (version > SCHEMA_VERSION) answer(500, NULL, "store_unavailable", "newer schema");

    /* The first journal_mode=WAL on a new file returns SQLITE_BUSY at once when others hold it: retry. */
    const char *wanted = wal ? "wal" : "delete";
    char row[1][128];
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int queued = 0;
    for (unsigned attempt = 1;; attempt++) {
        rc = query("PRAGMA journal_mode", NULL, 0, row, 1);
        if (rc == SQLITE_ROW && strcmp(row[0], wanted) == 0) break;
        if (rc == SQLITE_ROW && !queued) {
            if (!enter_queue(busy_ms)) store_failed(SQLITE_BUSY);
            queued = 1;
            continue;
        }
        if (rc == SQLITE_ROW) {
            rc = query(wal ? "PRAGMA journal_mode=wal" : "PRAGMA journal_mode=delete", NULL, 0, row, 1);
            if (rc == SQLITE_ROW && strcmp(row[0], wanted) == 0) break;
            if (rc == SQLITE_ROW) rc = SQLITE_BUSY;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        long waited = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (((rc & 0xFF) != SQLITE_BUSY && (rc & 0xFF) != SQLITE_LOCKED) || waited >= busy_ms) store_failed(rc);
        usleep(500 + rand() % ((attempt < 20 ? attempt : 20) * 500));
    }
    if (queued) leave_queue();
    mark("pragma_journal_mode");
    rc = query(full_sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", NULL, 0, NULL, 0);
    if (rc != SQLITE_DONE) store_failed(rc);
    mark("pragma_synchronous");

    if (version == SCHEMA_VERSION) return;
    if (!enter_queue(busy_ms)) store_failed(SQLITE_BUSY);
    if ((rc = query("BEGIN IMMEDIATE", NULL, 0, NULL, 0)) != SQLITE_DONE) store_failed(rc);
    int locked = user_version(); /* another process may have migrated while we waited for the lock */
    if (locked > SCHEMA_VERSION) { rollback(); answer(500, NULL, "store_unavailable", "newer schema"); }
    for (int v = locked; v < SCHEMA_VERSION; v++)
        for (const char **sql = schema[v]; *sql; sql++)
            if ((rc = query(*sql, NULL, 0, NULL, 0)) != SQLITE_DONE) { rollback(); store_failed(rc); }
    char set_version[64];
    snprintf(set_version, sizeof set_version, "PRAGMA user_version=%d", SCHEMA_VERSION);
    if ((rc = query(set_version, NULL, 0, NULL, 0)) != SQLITE_DONE) { rollback(); store_failed(rc); }
    if ((rc = query("COMMIT", NULL, 0, NULL, 0)) != SQLITE_DONE) { rollback(); store_failed(rc); }
    checkpoint_if_large(busy_ms);
    leave_queue();
}

static void close_store(void) {
    if (getenv("FLOOR_NO_CLOSE")) return;
    sqlite3_close_v2(db);
    mark("close");
}

static void claim(int busy_ms) {
    char now[64], result[1024];
    char previous[1][128] = {{0}}, row[3][128];
    rfc3339(now);
    if (!enter_queue(busy_ms)) store_failed(SQLITE_BUSY);
    int rc = query("BEGIN IMMEDIATE", NULL, 0, NULL, 0);
    if (rc != SQLITE_DONE) store_failed(rc);
    mark("begin_immediate");
    const char *who[] = {username};
    rc = query("SELECT claimed_by FROM profiles WHERE username = ?1", who, 1, previous, 1);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) { rollback(); store_failed(rc); }
    mark("select_previous_owner");
    const char *binds[] = {username, user_id, now, "none"};
    rc = query(claim_sql, binds, 4, row, 3);
    mark("guarded_upsert");
    if (rc == SQLITE_CONSTRAINT_UNIQUE && strstr(sqlite3_errmsg(db), "claimed_by")) {
        rollback();
        answer(409, NULL, "user_has_other_profile", "you already own a different LeetCode profile; release it first");
    }
    if (rc == SQLITE_DONE) {
        rollback();
        answer(409, NULL, "already_claimed", "this LeetCode profile is already claimed by another user");
    }
    if (rc != SQLITE_ROW) { rollback(); store_failed(rc); }
    const char *event[] = {now, strcmp(previous[0], user_id) == 0 ? "reverify" : "claim", username, user_id,
                           request_id, NULL};
    if ((rc = query(event_sql, event, 6, NULL, 0)) != SQLITE_DONE) { rollback(); store_failed(rc); }
    mark("event_insert");
    if ((rc = query("COMMIT", NULL, 0, NULL, 0)) != SQLITE_DONE) { rollback(); store_failed(rc); }
    mark("commit");
    checkpoint_if_large(busy_ms);
    leave_queue();
    close_store();
    snprintf(result, sizeof result,
             "{\"username\":\"%s\",\"claimed_by\":\"%s\",\"claimed_at\":\"%s\",\"verified_via\":\"%s\","
             "\"profile\":null}",
             username, row[0], row[1], row[2]);
    answer(200, result, NULL, NULL);
}

static void status(void) {
    char row[3][128], result[512];
    const char *who[] = {username};
    int rc = query("SELECT claimed_by, claimed_at, verified_via FROM profiles WHERE username = ?1"
                   " AND claimed_by IS NOT NULL", who, 1, row, 3);
    mark("select_status");
    close_store();
    if (rc == SQLITE_ROW)
        snprintf(result, sizeof result, "{\"username\":\"%s\",\"claimed\":true,\"mine\":%s,\"claimed_at\":\"%s\"}",
                 username, strcmp(row[0], user_id) == 0 ? "true" : "false", row[1]);
    else if (rc == SQLITE_DONE)
        snprintf(result, sizeof result, "{\"username\":\"%s\",\"claimed\":false,\"mine\":false,\"claimed_at\":null}",
                 username);
    else store_failed(rc);
    answer(200, result, NULL, NULL);
}

static const char *env(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

int main(void) {
    clock_gettime(CLOCK_MONOTONIC, &started);
    last = started;
    tracing = getenv("FLOOR_TRACE") != NULL;
    size_t n = 0;
    ssize_t r;
    while (n < sizeof input - 1 && ((r = read(0, input + n, sizeof input - 1 - n)) > 0 || (r < 0 && errno == EINTR)))
        if (r > 0) n += r;
    input[n] = 0;
    if (n > MAX_BYTES) answer(413, NULL, "payload_too_large", "request is larger than 65536 bytes");
    char *p = input;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (*p != '{') answer(400, NULL, "invalid_json", "request is not valid JSON");

    /* Locate every value before cutting any (cutting writes NULs into the text the next search reads). */
    char *a = (char *)field(p, "action"), *u = (char *)field(p, "username"), *id = (char *)field(p, "user_id"),
         *rid = (char *)field(p, "request_id");
    char *values[] = {a, u, id, rid};
    for (int i = 0; i < 4; i++)
        if (values[i]) *strchr(values[i], '"') = 0;
    action = a, username = u, user_id = id, request_id = rid;

    const char *auth = env("CLAIM_AUTH", NULL), *verify = env("CLAIM_VERIFY", "leetcode");
    if (!auth || strcmp(auth, "trusted") != 0) answer(500, NULL, "misconfigured", "CLAIM_AUTH must be trusted here");
    int busy_ms = atoi(env("CLAIM_BUSY_TIMEOUT_MS", "3000"));
    int full_sync = strcmp(env("CLAIM_SYNC", "full"), "full") == 0;
    int wal = strcmp(env("CLAIM_JOURNAL", "wal"), "wal") == 0;
    const char *path = env("CLAIM_DB", "./data/claims.sqlite");

    if (!action || !username) answer(400, NULL, "invalid_request", "missing field");
    if (!user_id) answer(401, NULL, "unauthenticated", "missing field \"user_id\" (CLAIM_AUTH=trusted)");
    for (char *c = u; *c; c++) {
        if (*c >= 'A' && *c <= 'Z') *c |= 0x20;
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-'))
            answer(400, NULL, "invalid_username", "username must be 1-64 characters of a-z, 0-9, '.', '_' or '-'");
    }
    if (!*u || strlen(u) > 64) answer(400, NULL, "invalid_username", "username must be 1-64 characters");

    int is_verify = strcmp(action, "verify") == 0, is_status = strcmp(action, "status") == 0;
    if (!is_verify && !is_status) answer(501, NULL, "not_implemented", "the floor serves verify and status only");
    if (is_verify && strcmp(verify, "off") != 0)
        answer(501, NULL, "not_implemented", "the floor needs CLAIM_VERIFY=off");
    mark("input_and_environment");
    open_store(path, busy_ms, full_sync, wal);
    if (is_verify) claim(busy_ms);
    else status();
    return 0;
}
