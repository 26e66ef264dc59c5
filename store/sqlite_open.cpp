// Opening the outbox: the lock, refusals, pragmas in the order SQLite needs
// them, the schema and its forward migrations.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "store/sqlite_store.h"

namespace outboxd::store {
namespace {

// Version N+1 is reached by running kMigrations[N]. Append only; never edit
// a step that has shipped.
const char* const kMigrations[] = {
    // 0 -> 1: the outbox.
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  provider TEXT NOT NULL,"
    "  key TEXT,"
    "  route TEXT NOT NULL,"
    "  body BLOB NOT NULL,"
    "  created_at REAL NOT NULL,"
    "  age_from REAL NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at REAL NOT NULL,"
    "  lease_until REAL NOT NULL DEFAULT 0,"
    "  last_status INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT NOT NULL DEFAULT '',"
    "  response BLOB,"
    "  delivered_at REAL NOT NULL DEFAULT 0,"
    "  generation INTEGER NOT NULL DEFAULT 0"
    ") STRICT;"
    // Literal states in partial indexes: queries must repeat the literal.
    "CREATE UNIQUE INDEX events_key ON events(provider, key) WHERE key IS NOT NULL;"
    "CREATE INDEX events_due ON events(provider, next_attempt_at, id) WHERE state = 0;"
    "CREATE INDEX events_pending_age ON events(provider, created_at) WHERE state = 0;"
    "CREATE INDEX events_inflight ON events(id) WHERE state = 1;"
    "CREATE INDEX events_delivered ON events(delivered_at) WHERE state = 2;"
    "CREATE INDEX events_dead ON events(delivered_at) WHERE state = 3;"
    "CREATE TABLE counts ("
    "  provider TEXT NOT NULL, state INTEGER NOT NULL, n INTEGER NOT NULL,"
    "  PRIMARY KEY (provider, state)) STRICT, WITHOUT ROWID;"
    "CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) STRICT, WITHOUT ROWID;"
    "INSERT INTO meta VALUES ('clean_shutdown', 1);",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion);

Status OpenError(const std::string& path, int rc, sqlite3* db, const char* what) {
  std::string msg =
      std::string(what) + " " + path + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  int primary = rc & 0xff;
  if (primary == SQLITE_NOTADB)
    return Status::Error(Code::kCorrupt, path + " is not an SQLite database");
  if (primary == SQLITE_CORRUPT) return Status::Error(Code::kCorrupt, msg);
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return Status::Error(Code::kLocked, msg);
  if (primary == SQLITE_FULL) return Status::Error(Code::kFull, msg);
  if (primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN || primary == SQLITE_PERM ||
      primary == SQLITE_READONLY) {
    return Status::Error(Code::kIoError, msg);
  }
  return Status::Error(Code::kInternal, msg);
}

int Exec(sqlite3* db, const std::string& sql) {
  return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
}

// Runs a pragma that returns one integer.
int PragmaInt(sqlite3* db, const char* sql, int64_t* value) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    *value = sqlite3_column_int64(stmt, 0);
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_OK;
  }
  sqlite3_finalize(stmt);
  return rc;
}

// Checks the file's first bytes before SQLite opens it (while no SQLite lock
// exists yet, so reading it by hand is harmless).
Status CheckHeader(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::Error(Code::kIoError, path + ": " + std::strerror(errno));
  }
  char header[16] = {};
  ssize_t n = ::read(fd, header, sizeof(header));
  ::close(fd);
  if (n == 0) return Status::Ok();  // empty: SQLite treats it as new
  if (n < 16 || std::memcmp(header, "SQLite format 3\0", 16) != 0) {
    return Status::Error(Code::kCorrupt, path + " is not an SQLite database; refusing to touch it");
  }
  return Status::Ok();
}

}  // namespace

Status Store::Open(const Options& options, std::unique_ptr<Store>* store) {
  const std::string& path = options.path;
  if (path.empty()) return Status::Error(Code::kInvalid, "store path is empty");

  std::string lock_path = path + ".lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) {
    return Status::Error(Code::kIoError, lock_path + ": " + std::strerror(errno));
  }
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd);
    return Status::Error(Code::kLocked,
                         path + " is in use by another process (lock " + lock_path + ")");
  }
  auto fail = [&](Status s, sqlite3* db) {
    if (db) sqlite3_close_v2(db);
    ::close(lock_fd);
    return s;
  };

  Status s = CheckHeader(path);
  if (!s.ok()) return fail(s, nullptr);

  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      nullptr);
  if (rc != SQLITE_OK) return fail(OpenError(path, rc, db, "cannot open"), db);
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);

  int64_t version = 0;
  rc = PragmaInt(db, "PRAGMA user_version", &version);
  if (rc != SQLITE_OK) return fail(OpenError(path, rc, db, "cannot read"), db);
  if (version > kSchemaVersion) {
    return fail(
        Status::Error(Code::kTooNew, path + " has schema version " + std::to_string(version) +
                                         ", newer than this outboxd understands (" +
                                         std::to_string(kSchemaVersion) + "); refusing to open it"),
        db);
  }
  int64_t tables = 0;
  rc = PragmaInt(db, "SELECT count(*) FROM sqlite_schema", &tables);
  if (rc != SQLITE_OK) return fail(OpenError(path, rc, db, "cannot read"), db);
  if (version == 0 && tables > 0) {
    return fail(Status::Error(Code::kCorrupt, path + " is an SQLite database of something else "
                                                     "(tables but no outboxd schema); refusing to "
                                                     "touch it"),
                db);
  }
  if (version == 0) {
    // Order matters: auto_vacuum and page_size only take on an empty file
    // before WAL is set.
    rc = Exec(db, "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA page_size=4096;");
    if (rc != SQLITE_OK) return fail(OpenError(path, rc, db, "cannot initialise"), db);
  }
  int64_t dummy = 0;
  rc = PragmaInt(db, "PRAGMA journal_mode=WAL", &dummy);
  if (rc != SQLITE_OK) return fail(OpenError(path, rc, db, "cannot set WAL on"), db);
  // The WAL stays a small fraction of the quota, so the quota bounds the
  // disk the store takes: at most max_size/16 of WAL beside the file.
  int64_t wal_pages =
      std::clamp<int64_t>(options.max_size_bytes / 4096 / 16, 32, options.wal_autocheckpoint_pages);
  int64_t wal_limit = std::min<int64_t>(options.journal_size_limit, wal_pages * 4096);
  std::string pragmas =
      // NORMAL between enqueues: settles and claims need no fsync of their
      // own (under WAL the durable state is a prefix of commit order, so the
      // next enqueue's FULL commit makes them durable too). Enqueue switches
      // to FULL for its commit when so configured.
      std::string("PRAGMA synchronous=NORMAL") +
      "; PRAGMA journal_size_limit=" + std::to_string(wal_limit) +
      "; PRAGMA wal_autocheckpoint=" + std::to_string(wal_pages) +
      "; PRAGMA secure_delete=OFF; PRAGMA mmap_size=0; PRAGMA foreign_keys=OFF;"
      " PRAGMA cache_size=-2000; PRAGMA temp_store=MEMORY;";
  rc = Exec(db, pragmas);
  if (rc != SQLITE_OK) return fail(OpenError(path, rc, db, "cannot configure"), db);

  // Forward migrations, each in its own transaction with its version bump.
  for (int64_t v = version; v < kSchemaVersion; ++v) {
    std::string sql = std::string("BEGIN IMMEDIATE;") + kMigrations[v] +
                      "PRAGMA user_version=" + std::to_string(v + 1) + "; COMMIT;";
    rc = Exec(db, sql);
    if (rc != SQLITE_OK) {
      Status err = OpenError(path, rc, db, "cannot migrate");
      Exec(db, "ROLLBACK");
      return fail(err, db);
    }
  }

  // After an unclean shutdown, check the file before trusting it.
  int64_t clean = 1;
  rc = PragmaInt(db, "SELECT v FROM meta WHERE k = 'clean_shutdown'", &clean);
  if (rc != SQLITE_OK) return fail(OpenError(path, rc, db, "cannot read"), db);
  if (clean == 0) {
    sqlite3_stmt* stmt = nullptr;
    rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &stmt, nullptr);
    std::string result;
    if (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
      result = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    } else {
      result = sqlite3_errmsg(db);
    }
    sqlite3_finalize(stmt);
    if (result != "ok") {
      return fail(Status::Error(Code::kCorrupt, path + " failed its integrity check (" + result +
                                                    "); it was left untouched"),
                  db);
    }
  }
  rc = Exec(db, "UPDATE meta SET v = 0 WHERE k = 'clean_shutdown'");
  if (rc != SQLITE_OK) return fail(OpenError(path, rc, db, "cannot write"), db);

  // The quota: inserts fail with SQLITE_FULL past it while deletes and
  // checkpoints still work.
  int64_t page_size = 4096;
  rc = PragmaInt(db, "PRAGMA page_size", &page_size);
  if (rc != SQLITE_OK || page_size <= 0) return fail(OpenError(path, rc, db, "cannot read"), db);
  int64_t max_pages = options.max_size_bytes / page_size;
  if (max_pages < 16) max_pages = 16;
  rc = PragmaInt(db, ("PRAGMA max_page_count=" + std::to_string(max_pages)).c_str(), &dummy);
  if (rc != SQLITE_OK) return fail(OpenError(path, rc, db, "cannot configure"), db);

  auto impl = std::make_unique<SqliteStore>(db, lock_fd, options);
  s = impl->Init();
  if (!s.ok()) return s;  // the SqliteStore owns db and lock now
  *store = std::move(impl);
  return Status::Ok();
}

}  // namespace outboxd::store
