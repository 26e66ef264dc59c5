// SqliteStore: the Store on one SQLite connection. Internal to store/.
//
// Row counts per provider and state live in a `counts` table updated in the
// same transaction as the rows, so stats are exact, survive crashes and cost
// no scan; an in-memory copy is updated after each commit.
//
// Thread rules: one thread at a time, as Store.
#ifndef OUTBOXD_STORE_SQLITE_STORE_H_
#define OUTBOXD_STORE_SQLITE_STORE_H_

#include <sqlite3.h>

#include <array>
#include <map>
#include <memory>
#include <string>

#include "store/statement.h"
#include "store/store.h"

namespace outboxd::store {

inline constexpr int kSchemaVersion = 1;

using Counts = std::map<std::string, std::array<int64_t, kStateCount>, std::less<>>;

class SqliteStore : public Store {
 public:
  SqliteStore(sqlite3* db, int lock_fd, Options options);
  ~SqliteStore() override;

  // Prepares statements, loads counts, recovers inflight rows.
  Status Init();

  int64_t recovered_on_open() const override { return recovered_; }
  Status Enqueue(std::span<const std::vector<NewEvent>> batches,
                 std::vector<BatchResult>* results) override;
  Status Claim(std::string_view provider, double now, int limit, double lease_s,
               std::vector<Event>* out) override;
  Status Settle(std::span<const Outcome> outcomes) override;
  Status SettleAndClaim(std::span<const Outcome> outcomes, std::string_view provider, double now,
                        int limit, double lease_s, std::vector<Event>* out) override;
  Status NextDue(std::string_view provider, std::optional<double>* at) override;
  Status Get(int64_t id, Event* event) override;
  Status List(const Filter& filter, int64_t after_id, int limit, std::vector<Event>* out) override;
  Status Stats(std::map<std::string, ProviderStats>* out) override;
  Status Retry(const Filter& filter, double now, int64_t* count) override;
  Status Purge(const Filter& filter, int64_t* count) override;
  Status Prune(double now, const PruneOptions& options, PruneResult* result) override;
  Status Size(int64_t* used_bytes, int64_t* file_bytes) override;

 private:
  // Bytes in use past which Enqueue refuses (kFull): max_size less a
  // headroom for settles, deletes and index pages.
  int64_t EnqueueLimit() const;
  // The ballast: a file of reserved disk space next to the database. When
  // the disk itself fills, it is deleted so that settles, deletes and
  // checkpoints can still run; enqueues are refused until it can be
  // written again.
  void EnsureBallast();
  void ReleaseBallast();
  Status Error(int rc, std::string_view what);
  Status Begin();
  Status Commit();
  void Rollback();
  // Records a change of `n` rows of `provider` in `state` for this transaction.
  void Delta(std::string_view provider, State state, int64_t n, Counts* deltas);
  Status FlushDeltas(const Counts& deltas);
  // Ends a write transaction: if `s` is ok, writes the count deltas and
  // commits, then applies them in memory; otherwise rolls back.
  Status End(Status s, const Counts& deltas);
  void ApplyDeltas(const Counts& deltas);
  Status SettleOne(const Outcome& o, Counts* deltas);
  // Builds "WHERE ..." for a filter; binds come from BindFilter.
  static std::string FilterSql(const Filter& filter, bool with_state);
  void BindFilter(sqlite3_stmt* stmt, const Filter& filter, int* index,
                  const std::string& ids_json);

  sqlite3* db_;
  int lock_fd_;
  Options options_;
  int64_t recovered_ = 0;
  int64_t page_size_ = 4096;
  std::string ballast_path_;
  int64_t ballast_bytes_ = 0;
  bool ballast_present_ = false;
  bool checkpoint_due_ = false;  // truncate the WAL at the next chance
  Counts counts_;

  Statement begin_, commit_, rollback_;
  Statement savepoint_, release_, rollback_to_;
  Statement insert_, find_key_;
  Statement claim_;
  Statement delivered_, retry_, dead_;
  Statement next_due_, oldest_pending_;
  Statement get_;
  Statement count_upsert_;
  Statement prune_delivered_, prune_dead_;
  Statement page_count_, freelist_count_;
  Statement sync_full_, sync_normal_;  // around enqueue commits
};

}  // namespace outboxd::store

#endif  // OUTBOXD_STORE_SQLITE_STORE_H_
