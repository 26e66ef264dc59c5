// Store: the SQLite outbox. The only code in outboxd that talks to SQLite.
//
// One Store owns one database file, one writer connection and a lock file
// (<path>.lock, flock'ed) so that two daemons never share a database.
// Every public operation is one transaction (BEGIN IMMEDIATE ... COMMIT).
//
// Thread rules: a Store is used from one thread at a time. It is not
// thread-safe and must never be used across fork().
#ifndef OUTBOXD_STORE_STORE_H_
#define OUTBOXD_STORE_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/status.h"

namespace outboxd::store {

// The numeric values are stored in the database: never renumber.
enum class State : int { kPending = 0, kInflight = 1, kDelivered = 2, kDead = 3 };
inline constexpr int kStateCount = 4;
const char* StateName(State state);
// Parses "pending", "inflight", "delivered", "dead". False for anything else.
bool ParseState(std::string_view name, State* state);

struct Options {
  std::string path;                      // the database file
  int64_t max_size_bytes = 256ll << 20;  // quota for the database file
  bool synchronous_full = true;          // false: synchronous=NORMAL
  int busy_timeout_ms = 5000;
  int64_t journal_size_limit = 64ll << 20;  // WAL truncated to this after checkpoints
  int wal_autocheckpoint_pages = 1000;
};

// An event to enqueue. The store keeps every byte as given.
struct NewEvent {
  std::string provider;   // configured provider name
  std::string key;        // idempotency key; empty means none. At most 255 bytes.
  std::string route;      // provider-defined routing parameters, opaque here
  std::string body;       // the exact request body to send, stored once
  double created_at = 0;  // Unix epoch seconds
};

struct EnqueueResult {
  int64_t id = 0;
  bool duplicate = false;  // an event with this provider+key was already kept
};

// The outcome of one all-or-nothing batch inside a group commit.
struct BatchResult {
  Status status;                   // kFull, kInvalid, ... : nothing of it stored
  std::vector<EnqueueResult> ids;  // one per event, in order, when ok
};

// One row of the outbox.
struct Event {
  int64_t id = 0;
  std::string provider;
  std::optional<std::string> key;
  std::string route;
  std::string body;
  double created_at = 0;  // when the event was enqueued (or given)
  double age_from = 0;    // max_age counts from here (created_at, or the last manual retry)
  State state = State::kPending;
  int attempts = 0;            // requests that counted against the event
  double next_attempt_at = 0;  // not before this time
  double lease_until = 0;      // while inflight
  int last_status = 0;         // last HTTP status; 0 none / transport error
  std::string last_error;
  std::optional<std::string> response;  // kept answer body (GET-type jobs)
  double delivered_at = 0;              // or the time it went dead
  int generation = 0;                   // bumped when a retry needs a fresh request identity
};

enum class OutcomeKind {
  kDelivered,  // done; `at` is the delivery time; `response` is kept if set
  kRetry,      // pending again, not before `at`
  kDead,       // permanent failure or expired; `at` is the time
  kRelease,    // pending again at `at`, attempts unchanged (shutdown, lane pause)
};

struct Outcome {
  int64_t id = 0;
  OutcomeKind kind = OutcomeKind::kDelivered;
  double at = 0;
  int status = 0;                       // HTTP status, 0 if none
  std::string error;                    // reason, kept in last_error
  std::optional<std::string> response;  // kDelivered only
  bool count_attempt = true;            // false: a 429 or an offline probe
  bool next_generation = false;         // kRetry: bump `generation`
  std::string provider;                 // the row's provider (counts are per provider)
};

// Selects rows for List/Retry/Purge. Empty fields select everything.
struct Filter {
  std::vector<int64_t> ids;
  std::string provider;
  std::optional<State> state;
};

struct ProviderStats {
  int64_t count[kStateCount] = {0, 0, 0, 0};  // indexed by State
  double oldest_pending_created_at = 0;       // 0: nothing pending
  double next_attempt_at = 0;                 // earliest pending; 0: none
};

struct PruneOptions {
  double keep_delivered_s = 3600;
  double keep_dead_s = 30 * 86400.0;
  int batch_rows = 500;  // rows deleted per transaction
  int max_batches = 20;  // per call, so a call stays short
};

struct PruneResult {
  int64_t deleted = 0;
  bool more = false;  // a pass stopped at max_batches: rows past retention remain
};

class Store {
 public:
  // Opens (creating if missing) the database at options.path, migrates an
  // older schema forward, and turns every `inflight` row back to `pending`.
  // Refuses, naming the file, when the file is not a database, is corrupt,
  // is of a newer schema version (kTooNew) or is locked by another process
  // (kLocked). Never deletes or overwrites a file it refuses.
  static Status Open(const Options& options, std::unique_ptr<Store>* store);

  virtual ~Store() = default;

  // Rows turned from inflight back to pending when this Store was opened.
  virtual int64_t recovered_on_open() const = 0;

  // Group commit: each batch is all-or-nothing (a SAVEPOINT), all batches
  // share one transaction and one fsync. A batch whose key repeats a kept
  // event of the same provider (or an earlier event in the same call) gets
  // that event's id with duplicate=true and stores nothing for it.
  // `results` gets one entry per batch. A non-ok return means the commit
  // itself failed: nothing of any batch was stored, and every result carries
  // that status. A quota or disk-full failure is Code::kFull.
  virtual Status Enqueue(std::span<const std::vector<NewEvent>> batches,
                         std::vector<BatchResult>* results) = 0;

  // Marks up to `limit` pending rows of `provider` due at `now` inflight,
  // earliest due first (ties by id), and returns them. O(log n + limit).
  virtual Status Claim(std::string_view provider, double now, int limit, double lease_s,
                       std::vector<Event>* out) = 0;

  // Settle(outcomes) and Claim(...) in one transaction: a busy lane pays
  // one commit per refill instead of two. Nothing is written on failure.
  virtual Status SettleAndClaim(std::span<const Outcome> outcomes, std::string_view provider,
                                double now, int limit, double lease_s, std::vector<Event>* out) = 0;

  // Writes outcomes in one transaction. Outcomes for rows that are no longer
  // inflight (purged meanwhile) are ignored. Each names its row's provider.
  virtual Status Settle(std::span<const Outcome> outcomes) = 0;

  // Earliest next_attempt_at of pending rows of `provider`; nullopt if none.
  virtual Status NextDue(std::string_view provider, std::optional<double>* at) = 0;

  virtual Status Get(int64_t id, Event* event) = 0;  // kNotFound if absent

  // Rows matching `filter` with id > after_id, by id, at most `limit`.
  virtual Status List(const Filter& filter, int64_t after_id, int limit,
                      std::vector<Event>* out) = 0;

  virtual Status Stats(std::map<std::string, ProviderStats>* out) = 0;

  // Dead (and pending) rows matching `filter` become pending, due at `now`,
  // attempts 0, max_age counted from `now`. Inflight and delivered rows are
  // left alone.
  virtual Status Retry(const Filter& filter, double now, int64_t* count) = 0;

  // Deletes matching rows that are not inflight.
  virtual Status Purge(const Filter& filter, int64_t* count) = 0;

  // Deletes delivered/dead rows past their retention in bounded
  // transactions, at most max_batches per state, then gives free pages back
  // to the filesystem. result->more says a further call has rows to delete.
  virtual Status Prune(double now, const PruneOptions& options, PruneResult* result) = 0;

  // Bytes the database occupies (pages in use), and the file size.
  virtual Status Size(int64_t* used_bytes, int64_t* file_bytes) = 0;
};

}  // namespace outboxd::store

#endif  // OUTBOXD_STORE_STORE_H_
