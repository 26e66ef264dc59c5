// Service: the operations of socket protocol v1 against the store, the
// providers and the delivery engine. The IPC server frames lines and keeps
// replies in order; the Service decides what each line means.
//
// Group commit: Handle() validates an enqueue and defers it; Commit() writes
// every deferred enqueue of the round in one store transaction and only then
// yields their replies. Nothing of a rejected request is stored.
//
// Thread rules: one thread (the event loop).
#ifndef OUTBOXD_DAEMON_SERVICE_H_
#define OUTBOXD_DAEMON_SERVICE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/clock.h"
#include "daemon/protocol.h"
#include "providers/provider.h"
#include "store/store.h"

namespace outboxd {

// What the Service needs of the delivery engine.
class LaneControl {
 public:
  struct LaneInfo {
    std::string state = "active";  // active, paused, rate_limited, probing, auth
    double paused_until = 0;       // wall epoch seconds; 0 if not paused
    std::string rate_limit;        // "1000/min"
    int in_flight = 0;
    std::string last_error;
  };
  virtual ~LaneControl() = default;
  // New events are queued for `provider`: send them now if the lane can.
  virtual void Notify(std::string_view provider) = 0;
  // False if there is no such lane.
  virtual bool SetPaused(std::string_view provider, bool paused) = 0;
  virtual bool Describe(std::string_view provider, LaneInfo* info) const = 0;
  // Appends the engine's counters in Prometheus text format.
  virtual void AppendMetrics(std::string* out) const = 0;
};

struct ServiceOptions {
  size_t max_batch = 10000;  // events in one enqueue request
};

// Counters the Service keeps, for metrics.
struct ServiceCounters {
  uint64_t enqueued = 0;
  uint64_t duplicates = 0;
  uint64_t queue_full = 0;
  uint64_t invalid = 0;
  uint64_t bad_requests = 0;
};

class Service {
 public:
  enum class Action {
    kReplied,      // *reply is set
    kDeferred,     // an enqueue waiting for Commit(); reply comes from there
    kAfterCommit,  // not handled: call again with this line after Commit()
  };

  // `store`, `lanes` and `clock` must outlive the Service.
  Service(store::Store* store, LaneControl* lanes, Clock* clock, ServiceOptions options);

  // Replaces the providers (at start and on reload). Names are the
  // configured ones; the Service does not own them.
  void SetProviders(std::map<std::string, providers::Provider*, std::less<>> providers);

  // While shutting down every request but ping answers shutting_down.
  void SetShuttingDown() { shutting_down_ = true; }

  // Handles one request line. `conn_has_deferred`: the same connection has
  // an enqueue deferred in this round, so an op that is not an enqueue must
  // wait for the commit to keep the connection's order (kAfterCommit).
  Action Handle(std::string_view line, bool conn_has_deferred, uint64_t ticket, std::string* reply);

  bool HasDeferred() const { return !deferred_.empty(); }

  // Commits every deferred enqueue in one transaction and calls `done` with
  // each ticket and its reply.
  void Commit(const std::function<void(uint64_t ticket, std::string reply)>& done);

  const ServiceCounters& counters() const { return counters_; }

 private:
  struct Deferred {
    uint64_t ticket;
    bool single;  // "event" (reply has id) or "events" (reply has ids)
    std::vector<store::NewEvent> events;
  };

  std::string Enqueue(const rapidjson::Document& req, uint64_t ticket, bool* deferred);
  std::string Get(const rapidjson::Document& req);
  std::string List(const rapidjson::Document& req);
  std::string Stats();
  std::string RetryOrPurge(const rapidjson::Document& req, bool retry);
  std::string Pause(const rapidjson::Document& req, bool paused);
  std::string Metrics();
  std::string StoreError(const store::Status& status);
  store::Status ReadStats(std::map<std::string, store::ProviderStats>* stats, int64_t* used,
                          int64_t* file);

  store::Store* store_;
  LaneControl* lanes_;
  Clock* clock_;
  ServiceOptions options_;
  std::map<std::string, providers::Provider*, std::less<>> providers_;
  std::vector<Deferred> deferred_;
  ServiceCounters counters_;
  bool shutting_down_ = false;
};

// Writes one stored event as the protocol's event object.
void WriteEventJson(const store::Event& event, bool with_body,
                    rapidjson::Writer<rapidjson::StringBuffer>* w);

}  // namespace outboxd

#endif  // OUTBOXD_DAEMON_SERVICE_H_
