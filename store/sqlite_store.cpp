#include "store/sqlite_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

namespace outboxd::store {
namespace {

constexpr const char* kEventColumns =
    "id, provider, key, route, body, created_at, age_from, state, attempts, next_attempt_at, "
    "lease_until, last_status, last_error, response, delivered_at, generation";

void ReadEvent(Statement& st, Event* e) {
  e->id = st.Int64(0);
  e->provider = st.Text(1);
  if (st.IsNull(2))
    e->key.reset();
  else
    e->key = st.Text(2);
  e->route = st.Text(3);
  e->body = st.Text(4);
  e->created_at = st.Double(5);
  e->age_from = st.Double(6);
  e->state = static_cast<State>(st.Int(7));
  e->attempts = st.Int(8);
  e->next_attempt_at = st.Double(9);
  e->lease_until = st.Double(10);
  e->last_status = st.Int(11);
  e->last_error = st.Text(12);
  if (st.IsNull(13))
    e->response.reset();
  else
    e->response = st.Text(13);
  e->delivered_at = st.Double(14);
  e->generation = st.Int(15);
}

[[noreturn]] void PrepareFailed(sqlite3* db, const char* sql) {
  std::fprintf(stderr, "<2>outboxd: cannot prepare a constant statement (%s): %s\n", sql,
               sqlite3_errmsg(db));
  std::abort();
}

}  // namespace

const char* StateName(State state) {
  switch (state) {
    case State::kPending:
      return "pending";
    case State::kInflight:
      return "inflight";
    case State::kDelivered:
      return "delivered";
    case State::kDead:
      return "dead";
  }
  return "unknown";
}

bool ParseState(std::string_view name, State* state) {
  for (int i = 0; i < kStateCount; ++i) {
    if (name == StateName(static_cast<State>(i))) {
      *state = static_cast<State>(i);
      return true;
    }
  }
  return false;
}

SqliteStore::SqliteStore(sqlite3* db, int lock_fd, Options options)
    : db_(db), lock_fd_(lock_fd), options_(std::move(options)) {}

SqliteStore::~SqliteStore() {
  // Mark the shutdown clean; sqlite3_close_v2 lets the member statements be
  // finalized after the connection is closed.
  sqlite3_exec(db_, "UPDATE meta SET v = 1 WHERE k = 'clean_shutdown'", nullptr, nullptr, nullptr);
  sqlite3_exec(db_, "PRAGMA optimize", nullptr, nullptr, nullptr);
  sqlite3_close_v2(db_);
  ::flock(lock_fd_, LOCK_UN);
  ::close(lock_fd_);
}

Status SqliteStore::Init() {
  struct {
    Statement* st;
    const char* sql;
  } prepared[] = {
      {&begin_, "BEGIN IMMEDIATE"},
      {&commit_, "COMMIT"},
      {&rollback_, "ROLLBACK"},
      {&savepoint_, "SAVEPOINT batch"},
      {&release_, "RELEASE batch"},
      {&rollback_to_, "ROLLBACK TO batch"},
      {&insert_,
       "INSERT INTO events (provider, key, route, body, created_at, age_from, state, "
       "next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5, 0, ?5)"},
      {&find_key_, "SELECT id FROM events WHERE provider = ?1 AND key = ?2"},
      {&claim_,
       "UPDATE events SET state = 1, lease_until = ?3 WHERE id IN ("
       " SELECT id FROM events WHERE state = 0 AND provider = ?1 AND next_attempt_at <= ?2"
       " ORDER BY next_attempt_at, id LIMIT ?4) "
       "RETURNING id, provider, key, route, body, created_at, age_from, state, attempts, "
       "next_attempt_at, lease_until, last_status, last_error, response, delivered_at, "
       "generation"},
      {&delivered_,
       "UPDATE events SET state = 2, delivered_at = ?2, last_status = ?3, last_error = '',"
       " response = ?4, attempts = attempts + ?5, lease_until = 0"
       " WHERE id = ?1 AND state = 1"},
      {&retry_,
       "UPDATE events SET state = 0, next_attempt_at = ?2, last_status = ?3, last_error = ?4,"
       " attempts = attempts + ?5, generation = generation + ?6, lease_until = 0"
       " WHERE id = ?1 AND state = 1"},
      {&dead_,
       "UPDATE events SET state = 3, delivered_at = ?2, last_status = ?3, last_error = ?4,"
       " attempts = attempts + ?5, lease_until = 0"
       " WHERE id = ?1 AND state = 1"},
      {&next_due_, "SELECT min(next_attempt_at) FROM events WHERE state = 0 AND provider = ?1"},
      {&oldest_pending_, "SELECT min(created_at) FROM events WHERE state = 0 AND provider = ?1"},
      {&get_,
       "SELECT id, provider, key, route, body, created_at, age_from, state, attempts, "
       "next_attempt_at, lease_until, last_status, last_error, response, delivered_at, "
       "generation FROM events WHERE id = ?1"},
      {&count_upsert_,
       "INSERT INTO counts (provider, state, n) VALUES (?1, ?2, ?3)"
       " ON CONFLICT (provider, state) DO UPDATE SET n = n + excluded.n"},
      {&prune_delivered_,
       "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE state = 2"
       " AND delivered_at < ?1 LIMIT ?2) RETURNING provider"},
      {&prune_dead_,
       "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE state = 3"
       " AND delivered_at < ?1 LIMIT ?2) RETURNING provider"},
      {&page_count_, "PRAGMA page_count"},
      {&sync_full_, "PRAGMA synchronous=FULL"},
      {&sync_normal_, "PRAGMA synchronous=NORMAL"},
      {&freelist_count_, "PRAGMA freelist_count"},
  };
  for (auto& p : prepared) {
    if (p.st->Prepare(db_, p.sql) != SQLITE_OK) PrepareFailed(db_, p.sql);
  }
  sqlite3_stmt* ps = nullptr;
  if (sqlite3_prepare_v2(db_, "PRAGMA page_size", -1, &ps, nullptr) == SQLITE_OK &&
      sqlite3_step(ps) == SQLITE_ROW) {
    page_size_ = sqlite3_column_int64(ps, 0);
  }
  sqlite3_finalize(ps);
  ballast_path_ = options_.path + ".ballast";
  ballast_bytes_ = std::clamp<int64_t>(options_.max_size_bytes / 64, 64 << 10, 1 << 20);
  struct stat st;
  ballast_present_ = ::stat(ballast_path_.c_str(), &st) == 0 && st.st_size >= ballast_bytes_;
  EnsureBallast();

  // Counts, then rows a crash left inflight go back to pending.
  Statement load;
  if (load.Prepare(db_, "SELECT provider, state, n FROM counts") != SQLITE_OK) {
    return Error(sqlite3_errcode(db_), "reading counts");
  }
  int rc;
  while ((rc = load.Step()) == SQLITE_ROW) {
    int state = load.Int(1);
    if (state >= 0 && state < kStateCount) counts_[load.Text(0)][state] = load.Int64(2);
  }
  if (rc != SQLITE_DONE) return Error(rc, "reading counts");

  Status s = Begin();
  if (!s.ok()) return s;
  Statement recover;
  if (recover.Prepare(db_,
                      "UPDATE events SET state = 0, lease_until = 0 WHERE state = 1 "
                      "RETURNING provider") != SQLITE_OK) {
    Rollback();
    return Error(sqlite3_errcode(db_), "recovering inflight rows");
  }
  Counts deltas;
  while ((rc = recover.Step()) == SQLITE_ROW) {
    std::string provider = recover.Text(0);
    Delta(provider, State::kInflight, -1, &deltas);
    Delta(provider, State::kPending, 1, &deltas);
    ++recovered_;
  }
  if (rc != SQLITE_DONE) {
    Status err = Error(rc, "recovering inflight rows");
    Rollback();
    return err;
  }
  return End(Status::Ok(), deltas);
}

Status SqliteStore::Error(int rc, std::string_view what) {
  std::string msg = std::string(what) + " in " + options_.path + ": " + sqlite3_errmsg(db_);
  switch (rc & 0xff) {
    case SQLITE_FULL:
      ReleaseBallast();
      return Status::Error(Code::kFull, "store full: " + options_.path +
                                            " reached store.max_size or the disk is full");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Error(Code::kCorrupt, msg);
    case SQLITE_IOERR:
      return Status::Error(Code::kIoError, msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Error(Code::kLocked, msg);
    case SQLITE_CONSTRAINT:
      return Status::Error(Code::kInvalid, msg);
    default:
      return Status::Error(Code::kInternal, msg);
  }
}

void SqliteStore::EnsureBallast() {
  if (ballast_present_ || ballast_bytes_ <= 0) return;
  struct statvfs fs;
  if (::statvfs(ballast_path_.c_str(), &fs) != 0 && ::statvfs(options_.path.c_str(), &fs) != 0) {
    return;
  }
  int64_t free_bytes = static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
  if (free_bytes < 2 * ballast_bytes_) return;
  int fd = ::open(ballast_path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  // Real blocks, not a sparse file: the space must be there to give back.
  bool ok = ::posix_fallocate(fd, 0, ballast_bytes_) == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(ballast_path_.c_str());
    return;
  }
  ballast_present_ = true;
}

void SqliteStore::ReleaseBallast() {
  checkpoint_due_ = true;
  if (!ballast_present_) return;
  ::unlink(ballast_path_.c_str());
  ballast_present_ = false;
}

Status SqliteStore::Begin() {
  if (checkpoint_due_ && sqlite3_get_autocommit(db_)) {
    // Fold the WAL back and truncate it: after a full disk this is what
    // frees the space the WAL holds.
    checkpoint_due_ = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr,
                                                nullptr) != SQLITE_OK;
  }
  begin_.Reset();
  int rc = begin_.Step();
  begin_.Reset();
  return rc == SQLITE_DONE ? Status::Ok() : Error(rc, "begin");
}

Status SqliteStore::Commit() {
  commit_.Reset();
  int rc = commit_.Step();
  commit_.Reset();
  return rc == SQLITE_DONE ? Status::Ok() : Error(rc, "commit");
}

void SqliteStore::Rollback() {
  // After FULL/IOERR/BUSY/NOMEM SQLite may have rolled back already.
  if (sqlite3_get_autocommit(db_)) return;
  rollback_.Reset();
  rollback_.Step();
  rollback_.Reset();
}

void SqliteStore::Delta(std::string_view provider, State state, int64_t n, Counts* deltas) {
  auto it = deltas->find(provider);
  if (it == deltas->end())
    it = deltas->emplace(std::string(provider), std::array<int64_t, 4>{}).first;
  it->second[static_cast<int>(state)] += n;
}

Status SqliteStore::FlushDeltas(const Counts& deltas) {
  for (const auto& [provider, d] : deltas) {
    for (int s = 0; s < kStateCount; ++s) {
      if (d[s] == 0) continue;
      count_upsert_.Reset();
      count_upsert_.BindText(1, provider);
      count_upsert_.Bind(2, s);
      count_upsert_.Bind(3, d[s]);
      int rc = count_upsert_.Step();
      count_upsert_.Reset();
      if (rc != SQLITE_DONE) return Error(rc, "updating counts");
    }
  }
  return Status::Ok();
}

void SqliteStore::ApplyDeltas(const Counts& deltas) {
  for (const auto& [provider, d] : deltas) {
    auto& c = counts_[provider];
    for (int s = 0; s < kStateCount; ++s) c[s] += d[s];
  }
}

Status SqliteStore::End(Status s, const Counts& deltas) {
  if (s.ok()) s = FlushDeltas(deltas);
  if (s.ok()) s = Commit();
  if (!s.ok()) {
    Rollback();
    return s;
  }
  ApplyDeltas(deltas);
  // Short of space (the ballast is spent): fold each transaction back into
  // the file before the next one, so the WAL never grows past one
  // transaction's pages and a checkpoint never needs more room than that.
  if (ballast_bytes_ > 0 && !ballast_present_) checkpoint_due_ = true;
  return Status::Ok();
}

Status SqliteStore::Enqueue(std::span<const std::vector<NewEvent>> batches,
                            std::vector<BatchResult>* results) {
  results->assign(batches.size(), BatchResult{});
  // The quota for new events stops short of the hard page limit, so that
  // settling, pruning and checkpoints always find the pages they need.
  int64_t used = 0, file = 0;
  Status s = Size(&used, &file);
  if (!ballast_present_) EnsureBallast();
  if (!ballast_present_ && ballast_bytes_ > 0) {
    s = Status::Error(Code::kFull, "disk full: the filesystem of " + options_.path +
                                       " has no room; waiting for deliveries to free space");
    for (auto& r : *results) r.status = s;
    return s;
  }
  if (s.ok() && used >= EnqueueLimit()) {
    s = Status::Error(Code::kFull, "store full: " + options_.path + " holds " +
                                       std::to_string(used >> 10) + " KiB of its store.max_size " +
                                       std::to_string(options_.max_size_bytes >> 10) + " KiB");
    for (auto& r : *results) r.status = s;
    return s;
  }
  // An acknowledged event must survive power loss: this commit is synced.
  if (options_.synchronous_full) {
    sync_full_.Reset();
    sync_full_.Step();
    sync_full_.Reset();
  }
  struct BackToNormal {
    SqliteStore* store;
    ~BackToNormal() {
      if (store->options_.synchronous_full) {
        store->sync_normal_.Reset();
        store->sync_normal_.Step();
        store->sync_normal_.Reset();
      }
    }
  } back_to_normal{this};
  s = Begin();
  if (!s.ok()) {
    for (auto& r : *results) r.status = s;
    return s;
  }
  Counts deltas;
  // Keys stored earlier in this call, for duplicates within the group.
  std::map<std::pair<std::string_view, std::string_view>, int64_t> fresh_keys;
  for (size_t b = 0; b < batches.size(); ++b) {
    const auto& batch = batches[b];
    BatchResult& result = (*results)[b];
    result.ids.reserve(batch.size());
    // A batch of several events is all or nothing: a savepoint. One event
    // is a single INSERT, atomic by itself (most requests: one event each).
    const bool atomic = batch.size() > 1;
    int rc;
    if (atomic) {
      savepoint_.Reset();
      rc = savepoint_.Step();
      savepoint_.Reset();
      if (rc != SQLITE_DONE) {
        result.status = Error(rc, "savepoint");
        break;
      }
    }
    Counts batch_deltas;
    Counts* counted = atomic ? &batch_deltas : &deltas;
    std::vector<std::pair<std::string_view, std::string_view>> batch_keys;
    Status bs;
    for (const NewEvent& e : batch) {
      if (e.key.size() > 255) {
        bs = Status::Error(Code::kInvalid, "key longer than 255 bytes");
        break;
      }
      if (!e.key.empty()) {
        auto fk = fresh_keys.find({e.provider, e.key});
        if (fk != fresh_keys.end()) {
          result.ids.push_back({fk->second, true});
          continue;
        }
        find_key_.Reset();
        find_key_.BindText(1, e.provider);
        find_key_.BindText(2, e.key);
        rc = find_key_.Step();
        if (rc == SQLITE_ROW) {
          result.ids.push_back({find_key_.Int64(0), true});
          find_key_.Reset();
          continue;
        }
        find_key_.Reset();
        if (rc != SQLITE_DONE) {
          bs = Error(rc, "looking up a key");
          break;
        }
      }
      insert_.Reset();
      insert_.BindText(1, e.provider);
      if (e.key.empty())
        insert_.BindNull(2);
      else
        insert_.BindText(2, e.key);
      insert_.BindText(3, e.route);
      insert_.BindBlob(4, e.body);
      insert_.Bind(5, e.created_at);
      rc = insert_.Step();
      insert_.Reset();
      if (rc != SQLITE_DONE) {
        bs = Error(rc, "inserting an event");
        break;
      }
      int64_t id = sqlite3_last_insert_rowid(db_);
      result.ids.push_back({id, false});
      Delta(e.provider, State::kPending, 1, counted);
      if (!e.key.empty()) {
        fresh_keys[{e.provider, e.key}] = id;
        batch_keys.push_back({e.provider, e.key});
      }
    }
    if (bs.ok() && atomic) {
      release_.Reset();
      rc = release_.Step();
      release_.Reset();
      if (rc != SQLITE_DONE) bs = Error(rc, "release");
    }
    if (!bs.ok()) {
      if (sqlite3_get_autocommit(db_)) {
        // SQLite rolled the whole transaction back: nothing of any batch is stored.
        for (auto& r : *results) {
          r.status = bs;
          r.ids.clear();
        }
        return bs;
      }
      if (atomic) {
        rollback_to_.Reset();
        rollback_to_.Step();
        rollback_to_.Reset();
        release_.Reset();
        release_.Step();
        release_.Reset();
      }
      for (const auto& k : batch_keys) fresh_keys.erase(k);
      result.status = bs;
      result.ids.clear();
      continue;
    }
    for (const auto& [p, d] : batch_deltas) {
      for (int st = 0; st < kStateCount; ++st) Delta(p, static_cast<State>(st), d[st], &deltas);
    }
  }
  s = End(Status::Ok(), deltas);
  if (!s.ok()) {
    for (auto& r : *results) {
      r.status = s;
      r.ids.clear();
    }
  }
  return s;
}

Status SqliteStore::Claim(std::string_view provider, double now, int limit, double lease_s,
                          std::vector<Event>* out) {
  return SettleAndClaim({}, provider, now, limit, lease_s, out);
}

Status SqliteStore::SettleAndClaim(std::span<const Outcome> outcomes, std::string_view provider,
                                   double now, int limit, double lease_s, std::vector<Event>* out) {
  out->clear();
  if (limit <= 0) return Settle(outcomes);
  Status s = Begin();
  if (!s.ok()) return s;
  Counts deltas;
  for (const Outcome& o : outcomes) {
    s = SettleOne(o, &deltas);
    if (!s.ok()) return End(s, deltas);
  }
  claim_.Reset();
  claim_.BindText(1, provider);
  claim_.Bind(2, now);
  claim_.Bind(3, now + lease_s);
  claim_.Bind(4, limit);
  int rc;
  while ((rc = claim_.Step()) == SQLITE_ROW) {
    out->emplace_back();
    ReadEvent(claim_, &out->back());
  }
  claim_.Reset();
  if (rc != SQLITE_DONE) {
    Status err = Error(rc, "claiming events");
    Rollback();
    out->clear();
    return err;
  }
  Delta(provider, State::kPending, -static_cast<int64_t>(out->size()), &deltas);
  Delta(provider, State::kInflight, static_cast<int64_t>(out->size()), &deltas);
  s = End(Status::Ok(), deltas);
  if (!s.ok()) {
    out->clear();
    return s;
  }
  std::sort(out->begin(), out->end(), [](const Event& a, const Event& b) {
    return a.next_attempt_at != b.next_attempt_at ? a.next_attempt_at < b.next_attempt_at
                                                  : a.id < b.id;
  });
  return Status::Ok();
}

Status SqliteStore::SettleOne(const Outcome& o, Counts* deltas) {
  if (o.provider.empty()) {
    return Status::Error(Code::kInvalid,
                         "an outcome for event " + std::to_string(o.id) + " names no provider");
  }
  Statement* st = nullptr;
  State to = State::kPending;
  switch (o.kind) {
    case OutcomeKind::kDelivered:
      st = &delivered_;
      to = State::kDelivered;
      st->Reset();
      st->Bind(1, o.id);
      st->Bind(2, o.at);
      st->Bind(3, o.status);
      if (o.response)
        st->BindBlob(4, *o.response);
      else
        st->BindNull(4);
      st->Bind(5, o.count_attempt ? 1 : 0);
      break;
    case OutcomeKind::kRetry:
    case OutcomeKind::kRelease:
      st = &retry_;
      st->Reset();
      st->Bind(1, o.id);
      st->Bind(2, o.at);
      st->Bind(3, o.status);
      st->BindText(4, o.error);
      st->Bind(5, (o.kind == OutcomeKind::kRetry && o.count_attempt) ? 1 : 0);
      st->Bind(6, (o.kind == OutcomeKind::kRetry && o.next_generation) ? 1 : 0);
      break;
    case OutcomeKind::kDead:
      st = &dead_;
      to = State::kDead;
      st->Reset();
      st->Bind(1, o.id);
      st->Bind(2, o.at);
      st->Bind(3, o.status);
      st->BindText(4, o.error);
      st->Bind(5, o.count_attempt ? 1 : 0);
      break;
  }
  int rc = st->Step();
  st->Reset();
  if (rc != SQLITE_DONE) return Error(rc, "settling an event");
  // No row changed: it is not inflight any more (purged meanwhile).
  if (sqlite3_changes(db_) == 1) {
    Delta(o.provider, State::kInflight, -1, deltas);
    Delta(o.provider, to, 1, deltas);
  }
  return Status::Ok();
}

Status SqliteStore::Settle(std::span<const Outcome> outcomes) {
  if (outcomes.empty()) return Status::Ok();
  Status s = Begin();
  if (!s.ok()) return s;
  Counts deltas;
  for (const Outcome& o : outcomes) {
    s = SettleOne(o, &deltas);
    if (!s.ok()) break;
  }
  return End(s, deltas);
}

Status SqliteStore::NextDue(std::string_view provider, std::optional<double>* at) {
  at->reset();
  next_due_.Reset();
  next_due_.BindText(1, provider);
  int rc = next_due_.Step();
  if (rc == SQLITE_ROW && !next_due_.IsNull(0)) *at = next_due_.Double(0);
  next_due_.Reset();
  return (rc == SQLITE_ROW || rc == SQLITE_DONE) ? Status::Ok() : Error(rc, "reading due time");
}

Status SqliteStore::Get(int64_t id, Event* event) {
  get_.Reset();
  get_.Bind(1, id);
  int rc = get_.Step();
  if (rc == SQLITE_ROW) {
    ReadEvent(get_, event);
    get_.Reset();
    return Status::Ok();
  }
  get_.Reset();
  if (rc == SQLITE_DONE) return Status::Error(Code::kNotFound, "no event " + std::to_string(id));
  return Error(rc, "reading an event");
}

std::string SqliteStore::FilterSql(const Filter& f, bool with_state) {
  std::string sql;
  auto add = [&](const std::string& cond) { sql += (sql.empty() ? " WHERE " : " AND ") + cond; };
  if (!f.ids.empty()) add("id IN (SELECT value FROM json_each(?))");
  if (!f.provider.empty()) add("provider = ?");
  // Literal state values, so the partial indexes can serve.
  if (with_state && f.state) add("state = " + std::to_string(static_cast<int>(*f.state)));
  return sql;
}

void SqliteStore::BindFilter(sqlite3_stmt* stmt, const Filter& f, int* index,
                             const std::string& ids_json) {
  if (!f.ids.empty()) {
    sqlite3_bind_text(stmt, (*index)++, ids_json.data(), static_cast<int>(ids_json.size()),
                      SQLITE_STATIC);
  }
  if (!f.provider.empty()) {
    sqlite3_bind_text(stmt, (*index)++, f.provider.data(), static_cast<int>(f.provider.size()),
                      SQLITE_STATIC);
  }
}

namespace {
std::string IdsJson(const std::vector<int64_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s + "]";
}
}  // namespace

Status SqliteStore::List(const Filter& filter, int64_t after_id, int limit,
                         std::vector<Event>* out) {
  out->clear();
  std::string where = FilterSql(filter, true);
  std::string sql = std::string("SELECT ") + kEventColumns + " FROM events" + where +
                    (where.empty() ? " WHERE " : " AND ") + "id > ? ORDER BY id LIMIT ?";
  Statement st;
  if (st.Prepare(db_, sql) != SQLITE_OK) return Error(sqlite3_errcode(db_), "listing events");
  std::string ids = IdsJson(filter.ids);
  int i = 1;
  BindFilter(st.get(), filter, &i, ids);
  st.Bind(i++, after_id);
  st.Bind(i++, limit);
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    out->emplace_back();
    ReadEvent(st, &out->back());
  }
  return rc == SQLITE_DONE ? Status::Ok() : Error(rc, "listing events");
}

Status SqliteStore::Stats(std::map<std::string, ProviderStats>* out) {
  out->clear();
  for (const auto& [provider, c] : counts_) {
    bool any = false;
    for (int s = 0; s < kStateCount; ++s) any |= c[s] != 0;
    if (!any) continue;
    ProviderStats& ps = (*out)[provider];
    for (int s = 0; s < kStateCount; ++s) ps.count[s] = c[s];
    if (c[0] > 0) {
      oldest_pending_.Reset();
      oldest_pending_.BindText(1, provider);
      int rc = oldest_pending_.Step();
      if (rc == SQLITE_ROW && !oldest_pending_.IsNull(0)) {
        ps.oldest_pending_created_at = oldest_pending_.Double(0);
      }
      oldest_pending_.Reset();
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error(rc, "reading stats");
      std::optional<double> due;
      Status s = NextDue(provider, &due);
      if (!s.ok()) return s;
      if (due) ps.next_attempt_at = *due;
    }
  }
  return Status::Ok();
}

Status SqliteStore::Retry(const Filter& filter, double now, int64_t* count) {
  *count = 0;
  // Which states a retry touches: dead by default; pending only when asked
  // (it makes waiting events due now).
  std::vector<State> states;
  if (filter.state) {
    if (*filter.state != State::kDead && *filter.state != State::kPending) return Status::Ok();
    states.push_back(*filter.state);
  } else {
    states = {State::kPending, State::kDead};  // pending first: dead rows become pending
  }
  Status s = Begin();
  if (!s.ok()) return s;
  Counts deltas;
  std::string ids = IdsJson(filter.ids);
  for (State from : states) {
    Filter f = filter;
    f.state = from;
    std::string sql =
        "UPDATE events SET state = 0, next_attempt_at = ?, age_from = ?, attempts = 0,"
        " delivered_at = 0, lease_until = 0" +
        FilterSql(f, true) + " RETURNING provider";
    Statement st;
    if (st.Prepare(db_, sql) != SQLITE_OK) {
      s = Error(sqlite3_errcode(db_), "retrying events");
      break;
    }
    st.Bind(1, now);
    st.Bind(2, now);
    int i = 3;
    BindFilter(st.get(), f, &i, ids);
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      std::string provider = st.Text(0);
      Delta(provider, from, -1, &deltas);
      Delta(provider, State::kPending, 1, &deltas);
      ++*count;
    }
    if (rc != SQLITE_DONE) {
      s = Error(rc, "retrying events");
      break;
    }
  }
  s = End(s, deltas);
  if (!s.ok()) *count = 0;
  return s;
}

Status SqliteStore::Purge(const Filter& filter, int64_t* count) {
  *count = 0;
  if (filter.state && *filter.state == State::kInflight) return Status::Ok();
  std::string where = FilterSql(filter, true);
  std::string sql = "DELETE FROM events" + where + (where.empty() ? " WHERE " : " AND ") +
                    "state != 1 RETURNING provider, state";
  Status s = Begin();
  if (!s.ok()) return s;
  Statement st;
  if (st.Prepare(db_, sql) != SQLITE_OK) {
    s = Error(sqlite3_errcode(db_), "purging events");
    Rollback();
    return s;
  }
  std::string ids = IdsJson(filter.ids);
  int i = 1;
  BindFilter(st.get(), filter, &i, ids);
  Counts deltas;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    Delta(st.Text(0), static_cast<State>(st.Int(1)), -1, &deltas);
    ++*count;
  }
  s = End(rc == SQLITE_DONE ? Status::Ok() : Error(rc, "purging events"), deltas);
  if (!s.ok()) *count = 0;
  return s;
}

Status SqliteStore::Prune(double now, const PruneOptions& options, PruneResult* result) {
  *result = PruneResult{};
  struct Pass {
    Statement* st;
    State state;
    double cutoff;
  } passes[] = {{&prune_delivered_, State::kDelivered, now - options.keep_delivered_s},
                {&prune_dead_, State::kDead, now - options.keep_dead_s}};
  for (const Pass& p : passes) {
    for (int b = 0;; ++b) {
      if (b == options.max_batches) {
        result->more = true;
        break;
      }
      Status s = Begin();
      if (!s.ok()) return s;
      p.st->Reset();
      p.st->Bind(1, p.cutoff);
      p.st->Bind(2, options.batch_rows);
      Counts deltas;
      int n = 0, rc;
      while ((rc = p.st->Step()) == SQLITE_ROW) {
        Delta(p.st->Text(0), p.state, -1, &deltas);
        ++n;
      }
      p.st->Reset();
      s = End(rc == SQLITE_DONE ? Status::Ok() : Error(rc, "pruning events"), deltas);
      if (!s.ok()) return s;
      result->deleted += n;
      if (n < options.batch_rows) break;
    }
  }
  // Give free pages back to the filesystem, a bounded number per call. The
  // pragma frees pages only as it is stepped, so step it to the end.
  Statement vacuum;
  if (vacuum.Prepare(db_, "PRAGMA incremental_vacuum(4096)") != SQLITE_OK) {
    return Error(sqlite3_errcode(db_), "vacuum");
  }
  int rc;
  while ((rc = vacuum.Step()) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) return Error(rc, "vacuum");
  // Hand the freed pages back now rather than at the next autocheckpoint.
  if (result->deleted > 0) {
    sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  }
  return Status::Ok();
}

int64_t SqliteStore::EnqueueLimit() const {
  int64_t headroom = std::max<int64_t>(64 << 10, options_.max_size_bytes / 20);
  return options_.max_size_bytes - headroom;
}

Status SqliteStore::Size(int64_t* used_bytes, int64_t* file_bytes) {
  int64_t pages = 0, free_pages = 0;
  page_count_.Reset();
  if (page_count_.Step() == SQLITE_ROW) pages = page_count_.Int64(0);
  page_count_.Reset();
  freelist_count_.Reset();
  if (freelist_count_.Step() == SQLITE_ROW) free_pages = freelist_count_.Int64(0);
  freelist_count_.Reset();
  *used_bytes = (pages - free_pages) * page_size_;
  struct stat st;
  *file_bytes = ::stat(options_.path.c_str(), &st) == 0 ? st.st_size : 0;
  struct stat wal;
  if (::stat((options_.path + "-wal").c_str(), &wal) == 0) *file_bytes += wal.st_size;
  return Status::Ok();
}

}  // namespace outboxd::store
