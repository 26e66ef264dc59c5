// Scheduler: the delivery engine. One lane per configured provider, each
// with its own rate limiters (one per provider endpoint), concurrency limit,
// pause state, offline probing and token handling, so one slow, failing or
// rate-limited provider never slows another.
//
// The scheduler never sleeps and never reads the time by itself: RunDue()
// does what is due at clock->Monotonic() and returns the next deadline;
// OnCompletions() digests finished requests and settles their outcomes at
// once. Outcomes that arise while claiming (expired, released) are written
// in the next claim's transaction. Only the event loop waits.
//
// Thread rules: one thread (the event loop).
#ifndef OUTBOXD_DAEMON_SCHEDULER_H_
#define OUTBOXD_DAEMON_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/backoff.h"
#include "daemon/clock.h"
#include "daemon/rate_limiter.h"
#include "daemon/service.h"
#include "providers/http.h"
#include "providers/provider.h"
#include "store/store.h"

namespace outboxd {

struct SchedulerOptions {
  double max_age_s = 7 * 86400.0;
  BackoffPolicy backoff;             // per event
  BackoffPolicy probe{1, 60};        // offline probing per lane
  BackoffPolicy auth_retry{1, 300};  // token requests that failed
  int claim_batch = 256;             // rows per claim at most
};

// A lane's configuration. The scheduler owns the provider.
struct LaneSpec {
  std::unique_ptr<providers::Provider> provider;
  int concurrency = 4;
  // Limit per endpoint (index of provider->endpoints()); the endpoint's
  // default where absent.
  std::map<size_t, providers::Rate> limits;
};

class Scheduler : public LaneControl {
 public:
  Scheduler(store::Store* store, providers::HttpTransport* transport, Clock* clock, Random* random,
            SchedulerOptions options);
  ~Scheduler() override;

  // Adds lanes or replaces the configuration of lanes with the same name,
  // keeping their queue, pause and in-flight state (SIGHUP). Lanes not named
  // stop claiming and are removed once idle.
  void Configure(std::vector<LaneSpec> lanes);
  // The configured providers, by name, for validation at enqueue.
  std::map<std::string, providers::Provider*, std::less<>> Providers() const;

  // Does what is due now; returns the next monotonic time it needs a call
  // (+infinity when only a completion or a Notify can make work).
  double RunDue();
  // Digests finished requests (as returned by the transport's Wait).
  void OnCompletions(std::vector<providers::HttpTransport::Completion>* done);

  // Graceful stop: no new claims; Idle() once nothing is in flight.
  void BeginShutdown();
  bool Idle() const;
  // Returns every in-flight row to pending without an attempt and settles.
  void ReleaseInFlight();

  // LaneControl.
  void Notify(std::string_view provider) override;
  bool SetPaused(std::string_view provider, bool paused) override;
  bool Describe(std::string_view provider, LaneInfo* info) const override;
  void AppendMetrics(std::string* out) const override;

  // For systemd's STATUS= line: "novu active, moost probing".
  std::string Summary() const;

 private:
  struct Lane;
  struct Pending {
    std::string lane;
    bool auth = false;
    bool probe = false;
    store::Event event;
  };

  void RunLane(Lane* lane, double mono, double wall, double* deadline);
  // Starts requests for claimed rows. Rows whose endpoint has no room go
  // back to pending; returns the earliest time they are due again (0: none).
  double StartEvents(Lane* lane, std::vector<store::Event>* events, double mono, double wall,
                     bool probe);
  void Digest(Lane* lane, Pending* p, const providers::HttpResponse& r, double mono, double wall);
  void DigestAuth(Lane* lane, const providers::HttpResponse& r, double mono, double wall);
  void AddOutcome(Lane* lane, store::Outcome o);
  // Rows claimed ahead go back to pending, due when they were.
  void ReleaseReady(Lane* lane);
  void Flush();
  double ToMono(double wall_time, double mono, double wall) const;
  Lane* Find(std::string_view name) const;

  store::Store* store_;
  providers::HttpTransport* transport_;
  Clock* clock_;
  Random* random_;
  SchedulerOptions options_;
  std::map<std::string, std::unique_ptr<Lane>, std::less<>> lanes_;
  std::map<providers::HttpTransport::RequestId, Pending> inflight_;
  providers::HttpTransport::RequestId next_request_ = 1;
  std::vector<store::Outcome> outcomes_;
  bool shutting_down_ = false;
  bool store_failed_ = false;
};

}  // namespace outboxd

#endif  // OUTBOXD_DAEMON_SCHEDULER_H_
