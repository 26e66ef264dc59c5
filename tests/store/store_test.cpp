// The outbox store: every operation, its refusals at open, quota, retention.
#include "store/store.h"

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/common/daemon_process.h"

namespace outboxd::store {
namespace {

using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

Options Opts(const TempDir& dir, int64_t max_size = 64ll << 20) {
  Options o;
  o.path = dir / "outbox.db";
  o.max_size_bytes = max_size;
  o.synchronous_full = false;
  return o;
}

std::unique_ptr<Store> OpenOk(const Options& o) {
  std::unique_ptr<Store> s;
  Status st = Store::Open(o, &s);
  REQUIRE_MESSAGE(st.ok(), st.ToString());
  return s;
}

NewEvent Ev(std::string provider, std::string body, std::string key = "", double at = 1000) {
  return NewEvent{std::move(provider), std::move(key), "{}", std::move(body), at};
}

std::vector<EnqueueResult> EnqueueOne(Store* s, std::vector<NewEvent> batch) {
  std::vector<std::vector<NewEvent>> batches{std::move(batch)};
  std::vector<BatchResult> results;
  Status st = s->Enqueue(batches, &results);
  REQUIRE_MESSAGE(st.ok(), st.ToString());
  REQUIRE(results[0].status.ok());
  return results[0].ids;
}

int64_t CountOf(Store* s, const std::string& provider, State state) {
  std::map<std::string, ProviderStats> stats;
  REQUIRE(s->Stats(&stats).ok());
  return stats[provider].count[static_cast<int>(state)];
}

TEST_CASE("enqueued events keep their exact bytes and come back by id") {
  TempDir dir;
  auto s = OpenOk(Opts(dir));
  std::string body = std::string("{\"a\":\"\xc3\xa9\"}") + std::string(1, '\0') + "tail";
  auto ids = EnqueueOne(s.get(), {Ev("novu", body, "k1", 1234.5)});
  REQUIRE(ids.size() == 1);
  CHECK_FALSE(ids[0].duplicate);
  Event e;
  REQUIRE(s->Get(ids[0].id, &e).ok());
  CHECK(e.body == body);
  CHECK(e.provider == "novu");
  CHECK(e.key == std::optional<std::string>("k1"));
  CHECK(e.state == State::kPending);
  CHECK(e.created_at == 1234.5);
  CHECK(e.next_attempt_at == 1234.5);
  CHECK(e.attempts == 0);
  CHECK(s->Get(ids[0].id + 100, &e).code() == Code::kNotFound);
}

TEST_CASE("a key already kept answers the first id and stores nothing") {
  TempDir dir;
  auto s = OpenOk(Opts(dir));
  auto a = EnqueueOne(s.get(), {Ev("novu", "{1}", "key")});
  auto b = EnqueueOne(s.get(), {Ev("novu", "{2}", "key")});
  CHECK(b[0].duplicate);
  CHECK(b[0].id == a[0].id);
  // Same key, other provider: a different event.
  auto c = EnqueueOne(s.get(), {Ev("moost", "{3}", "key")});
  CHECK_FALSE(c[0].duplicate);
  // Within one batch too.
  auto d = EnqueueOne(s.get(), {Ev("novu", "{4}", "k2"), Ev("novu", "{5}", "k2")});
  CHECK_FALSE(d[0].duplicate);
  CHECK(d[1].duplicate);
  CHECK(d[1].id == d[0].id);
  CHECK(CountOf(s.get(), "novu", State::kPending) == 2);
  Event e;
  REQUIRE(s->Get(a[0].id, &e).ok());
  CHECK(e.body == "{1}");
}

TEST_CASE("each batch of a group is all or nothing") {
  TempDir dir;
  auto s = OpenOk(Opts(dir));
  std::vector<std::vector<NewEvent>> batches = {
      {Ev("p", "a"), Ev("p", "b")},
      {Ev("p", "c"), Ev("p", "d", std::string(300, 'k'))},  // key too long
      {Ev("p", "x", std::string(300, 'k'))},                // a single event, refused
      {Ev("p", "e")},
  };
  std::vector<BatchResult> results;
  REQUIRE(s->Enqueue(batches, &results).ok());
  REQUIRE(results.size() == 4);
  CHECK(results[0].status.ok());
  CHECK(results[1].status.code() == Code::kInvalid);
  CHECK(results[1].ids.empty());
  CHECK(results[2].status.code() == Code::kInvalid);
  CHECK(results[2].ids.empty());
  CHECK(results[3].status.ok());
  CHECK(CountOf(s.get(), "p", State::kPending) == 3);
  std::vector<Event> all;
  REQUIRE(s->List({}, 0, 100, &all).ok());
  std::vector<std::string> bodies;
  for (auto& e : all) bodies.push_back(e.body);
  CHECK(bodies == std::vector<std::string>{"a", "b", "e"});
}

TEST_CASE("claim takes due rows of one provider, earliest due first, up to the limit") {
  TempDir dir;
  auto s = OpenOk(Opts(dir));
  EnqueueOne(s.get(),
             {Ev("p", "late", "", 300), Ev("p", "early", "", 100), Ev("q", "other", "", 50),
              Ev("p", "mid", "", 200), Ev("p", "future", "", 5000)});
  std::vector<Event> got;
  REQUIRE(s->Claim("p", 1000, 2, 30, &got).ok());
  REQUIRE(got.size() == 2);
  CHECK(got[0].body == "early");
  CHECK(got[1].body == "mid");
  CHECK(got[0].state == State::kInflight);
  CHECK(got[0].lease_until == 1030);
  REQUIRE(s->Claim("p", 1000, 10, 30, &got).ok());
  REQUIRE(got.size() == 1);
  CHECK(got[0].body == "late");
  REQUIRE(s->Claim("p", 1000, 10, 30, &got).ok());
  CHECK(got.empty());  // "future" is not due
  std::optional<double> due;
  REQUIRE(s->NextDue("p", &due).ok());
  CHECK(due == std::optional<double>(5000));
  CHECK(CountOf(s.get(), "p", State::kInflight) == 3);
  CHECK(CountOf(s.get(), "q", State::kPending) == 1);
}

TEST_CASE("settle records each kind of outcome") {
  TempDir dir;
  auto s = OpenOk(Opts(dir));
  EnqueueOne(s.get(), {Ev("p", "1"), Ev("p", "2"), Ev("p", "3"), Ev("p", "4"), Ev("p", "5")});
  std::vector<Event> got;
  REQUIRE(s->Claim("p", 2000, 5, 30, &got).ok());
  REQUIRE(got.size() == 5);
  std::vector<Outcome> outcomes(5);
  outcomes[0] = {got[0].id, OutcomeKind::kDelivered, 2001, 200, "", std::string("{\"r\":1}")};
  outcomes[1] = {got[1].id, OutcomeKind::kRetry, 2100, 503, "service unavailable"};
  outcomes[2] = {got[2].id, OutcomeKind::kRetry, 2200, 429, "rate limited", std::nullopt, false};
  outcomes[3] = {got[3].id, OutcomeKind::kDead, 2003, 400, "bad request"};
  outcomes[4] = {got[4].id, OutcomeKind::kRetry, 2300, 503, "replayed", std::nullopt, true, true};
  for (auto& o : outcomes) o.provider = "p";
  REQUIRE(s->Settle(outcomes).ok());
  Event e;
  REQUIRE(s->Get(got[0].id, &e).ok());
  CHECK(e.state == State::kDelivered);
  CHECK(e.response == std::optional<std::string>("{\"r\":1}"));
  CHECK(e.attempts == 1);
  CHECK(e.delivered_at == 2001);
  REQUIRE(s->Get(got[1].id, &e).ok());
  CHECK(e.state == State::kPending);
  CHECK(e.attempts == 1);
  CHECK(e.next_attempt_at == 2100);
  CHECK(e.last_status == 503);
  CHECK(e.last_error == "service unavailable");
  REQUIRE(s->Get(got[2].id, &e).ok());
  CHECK(e.attempts == 0);  // a 429 costs no attempt
  REQUIRE(s->Get(got[3].id, &e).ok());
  CHECK(e.state == State::kDead);
  CHECK(e.last_status == 400);
  REQUIRE(s->Get(got[4].id, &e).ok());
  CHECK(e.generation == 1);
  CHECK(CountOf(s.get(), "p", State::kDelivered) == 1);
  CHECK(CountOf(s.get(), "p", State::kDead) == 1);
  CHECK(CountOf(s.get(), "p", State::kPending) == 3);
  CHECK(CountOf(s.get(), "p", State::kInflight) == 0);
  // An outcome for a row that is no longer inflight is ignored.
  REQUIRE(s->Settle(std::vector<Outcome>{{got[3].id, OutcomeKind::kDelivered, 1, 0, "",
                                          std::nullopt, true, false, "p"}})
              .ok());
  REQUIRE(s->Get(got[3].id, &e).ok());
  CHECK(e.state == State::kDead);
}

TEST_CASE("list pages by id and filters by provider and state") {
  TempDir dir;
  auto s = OpenOk(Opts(dir));
  for (int i = 0; i < 10; ++i) EnqueueOne(s.get(), {Ev(i % 2 ? "a" : "b", std::to_string(i))});
  std::vector<Event> page;
  Filter f;
  f.provider = "a";
  REQUIRE(s->List(f, 0, 3, &page).ok());
  REQUIRE(page.size() == 3);
  CHECK(page[0].body == "1");
  CHECK(page[2].body == "5");
  REQUIRE(s->List(f, page.back().id, 3, &page).ok());
  REQUIRE(page.size() == 2);
  CHECK(page[1].body == "9");
  Filter byids;
  byids.ids = {2, 4, 99};
  REQUIRE(s->List(byids, 0, 10, &page).ok());
  CHECK(page.size() == 2);
  Filter dead;
  dead.state = State::kDead;
  REQUIRE(s->List(dead, 0, 10, &page).ok());
  CHECK(page.empty());
}

TEST_CASE("retry makes dead events pending again and purge deletes") {
  TempDir dir;
  auto s = OpenOk(Opts(dir));
  EnqueueOne(s.get(), {Ev("p", "1"), Ev("p", "2"), Ev("p", "3")});
  std::vector<Event> got;
  REQUIRE(s->Claim("p", 2000, 3, 30, &got).ok());
  std::vector<Outcome> dead;
  for (auto& e : got)
    dead.push_back({e.id, OutcomeKind::kDead, 2000, 400, "bad", std::nullopt, true, false, "p"});
  REQUIRE(s->Settle(dead).ok());
  Filter f;
  f.ids = {got[0].id};
  int64_t n = 0;
  REQUIRE(s->Retry(f, 3000, &n).ok());
  CHECK(n == 1);
  Event e;
  REQUIRE(s->Get(got[0].id, &e).ok());
  CHECK(e.state == State::kPending);
  CHECK(e.attempts == 0);
  CHECK(e.next_attempt_at == 3000);
  CHECK(e.age_from == 3000);
  Filter all_dead;
  all_dead.provider = "p";
  all_dead.state = State::kDead;
  REQUIRE(s->Retry(all_dead, 3000, &n).ok());
  CHECK(n == 2);
  CHECK(CountOf(s.get(), "p", State::kPending) == 3);
  // Inflight rows are never purged.
  REQUIRE(s->Claim("p", 4000, 1, 30, &got).ok());
  Filter everything;
  everything.provider = "p";
  REQUIRE(s->Purge(everything, &n).ok());
  CHECK(n == 2);
  CHECK(CountOf(s.get(), "p", State::kInflight) == 1);
  CHECK(CountOf(s.get(), "p", State::kPending) == 0);
}

TEST_CASE("prune removes rows past retention and gives the space back") {
  TempDir dir;
  auto o = Opts(dir);
  auto s = OpenOk(o);
  std::string body(2000, 'x');
  for (int b = 0; b < 10; ++b) {
    std::vector<NewEvent> batch;
    for (int i = 0; i < 500; ++i) batch.push_back(Ev("p", body));
    EnqueueOne(s.get(), batch);
  }
  std::vector<Event> got;
  std::vector<Outcome> done;
  for (;;) {
    REQUIRE(s->Claim("p", 2000, 1000, 30, &got).ok());
    if (got.empty()) break;
    done.clear();
    for (auto& e : got)
      done.push_back(
          {e.id, OutcomeKind::kDelivered, 2000, 200, "", std::nullopt, true, false, "p"});
    REQUIRE(s->Settle(done).ok());
  }
  CHECK(CountOf(s.get(), "p", State::kDelivered) == 5000);
  int64_t used_before = 0, file_before = 0;
  REQUIRE(s->Size(&used_before, &file_before).ok());
  PruneResult pruned;
  PruneOptions keep;
  keep.keep_delivered_s = 3600;
  REQUIRE(s->Prune(2000 + 100, keep, &pruned).ok());
  CHECK(pruned.deleted == 0);  // not old enough yet
  CHECK_FALSE(pruned.more);
  PruneOptions po;
  po.keep_delivered_s = 3600;
  po.batch_rows = 500;
  po.max_batches = 4;
  // Each call deletes at most 4 x 500 rows and says whether more remain.
  std::vector<int64_t> calls;
  for (;;) {
    REQUIRE(s->Prune(2000 + 3601, po, &pruned).ok());
    calls.push_back(pruned.deleted);
    if (!pruned.more) break;
    REQUIRE(calls.size() < 10);
  }
  CHECK(calls == std::vector<int64_t>{2000, 2000, 1000});
  CHECK(CountOf(s.get(), "p", State::kDelivered) == 0);
  // Checkpoint so the main file shows the vacuum.
  s.reset();
  s = OpenOk(o);
  int64_t used_after = 0, file_after = 0;
  REQUIRE(s->Size(&used_after, &file_after).ok());
  CHECK(used_after < used_before / 4);
  CHECK(std::filesystem::file_size(o.path) < static_cast<uintmax_t>(used_before / 4));
}

TEST_CASE("the quota refuses enqueues with kFull, stores nothing, and deletes still work") {
  TempDir dir;
  auto s = OpenOk(Opts(dir, 512 * 1024));
  std::string body(8000, 'y');
  int stored = 0;
  Status last;
  for (int i = 0; i < 1000; ++i) {
    std::vector<std::vector<NewEvent>> batches{{Ev("p", body)}};
    std::vector<BatchResult> results;
    Status st = s->Enqueue(batches, &results);
    if (!st.ok() || !results[0].status.ok()) {
      last = st.ok() ? results[0].status : st;
      break;
    }
    ++stored;
  }
  CHECK(last.code() == Code::kFull);
  CHECK(last.message().find("store full") != std::string::npos);
  CHECK(stored > 10);
  CHECK(CountOf(s.get(), "p", State::kPending) == stored);
  // Purging frees room: enqueue works again.
  Filter f;
  f.provider = "p";
  int64_t n = 0;
  REQUIRE(s->Purge(f, &n).ok());
  CHECK(n == stored);
  EnqueueOne(s.get(), {Ev("p", body)});
}

TEST_CASE("open refuses what is not ours and leaves the file untouched") {
  TempDir dir;
  Options o = Opts(dir);
  std::unique_ptr<Store> s;
  SUBCASE("a text file") {
    WriteFile(o.path, "hello, this is not a database\n");
    Status st = Store::Open(o, &s);
    CHECK(st.code() == Code::kCorrupt);
    CHECK(st.message().find(o.path) != std::string::npos);
    CHECK(ReadFile(o.path) == "hello, this is not a database\n");
  }
  SUBCASE("a newer schema version") {
    { auto first = OpenOk(o); }
    sqlite3* db;
    REQUIRE(sqlite3_open(o.path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    std::string before = ReadFile(o.path);
    Status st = Store::Open(o, &s);
    CHECK(st.code() == Code::kTooNew);
    CHECK(st.message().find("99") != std::string::npos);
    CHECK(ReadFile(o.path) == before);
  }
  SUBCASE("another database") {
    sqlite3* db;
    REQUIRE(sqlite3_open(o.path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "CREATE TABLE t(x)", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    std::string before = ReadFile(o.path);
    CHECK(Store::Open(o, &s).code() == Code::kCorrupt);
    CHECK(ReadFile(o.path) == before);
  }
  SUBCASE("a garbled file") {
    {
      auto first = OpenOk(o);
      std::vector<NewEvent> batch;
      for (int i = 0; i < 200; ++i) batch.push_back(Ev("p", std::string(500, 'z')));
      EnqueueOne(first.get(), batch);
    }
    // Keep the header, garble the pages behind it, and mark it unclean.
    std::string bytes = ReadFile(o.path);
    REQUIRE(bytes.size() > 8192);
    for (size_t i = 4096; i < bytes.size(); i += 7) bytes[i] = static_cast<char>(i * 31);
    WriteFile(o.path, bytes);
    Status st = Store::Open(o, &s);
    CHECK_FALSE(st.ok());
    CHECK(st.code() == Code::kCorrupt);
    CHECK(st.message().find(o.path) != std::string::npos);
    CHECK(ReadFile(o.path) == bytes);
  }
  SUBCASE("a database another process holds") {
    auto first = OpenOk(o);
    Status st = Store::Open(o, &s);
    CHECK(st.code() == Code::kLocked);
    CHECK(st.message().find("in use") != std::string::npos);
  }
  CHECK(s == nullptr);
}

TEST_CASE("the claim query uses the partial index") {
  TempDir dir;
  Options o = Opts(dir);
  { auto s = OpenOk(o); }
  sqlite3* db;
  REQUIRE(sqlite3_open(o.path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st;
  REQUIRE(sqlite3_prepare_v2(db,
                             "EXPLAIN QUERY PLAN SELECT id FROM events WHERE state = 0 AND "
                             "provider = ?1 AND next_attempt_at <= ?2 ORDER BY next_attempt_at, "
                             "id LIMIT ?3",
                             -1, &st, nullptr) == SQLITE_OK);
  std::string plan;
  while (sqlite3_step(st) == SQLITE_ROW) {
    plan += reinterpret_cast<const char*>(sqlite3_column_text(st, 3));
    plan += "\n";
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  CHECK(plan.find("events_due") != std::string::npos);
  CHECK(plan.find("TEMP B-TREE") == std::string::npos);  // no sort of the backlog
}

TEST_CASE("inflight rows are pending again after reopening") {
  TempDir dir;
  Options o = Opts(dir);
  {
    auto s = OpenOk(o);
    EnqueueOne(s.get(), {Ev("p", "1"), Ev("p", "2")});
    std::vector<Event> got;
    REQUIRE(s->Claim("p", 2000, 2, 30, &got).ok());
  }
  auto s = OpenOk(o);
  CHECK(s->recovered_on_open() == 2);
  CHECK(CountOf(s.get(), "p", State::kPending) == 2);
  CHECK(CountOf(s.get(), "p", State::kInflight) == 0);
}

}  // namespace
}  // namespace outboxd::store
