#include "daemon/scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <set>

#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/units.h"

namespace outboxd {

using providers::StoredEvent;
using providers::Verdict;
using providers::VerdictKind;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
// How long a claimed row's lease says it may take (informational: rows a
// crash leaves inflight are returned at the next start).
constexpr double kLeaseS = 600;
// Claim rounds per lane in one RunDue, and outcomes held before a settle.
constexpr int kMaxRoundsPerRun = 8;
constexpr size_t kMaxPendingOutcomes = 1024;

StoredEvent View(const store::Event& e) {
  StoredEvent s;
  s.id = e.id;
  s.key = e.key ? std::string_view(*e.key) : std::string_view();
  s.route = e.route;
  s.body = e.body;
  s.created_at = e.created_at;
  s.attempts = e.attempts;
  s.generation = e.generation;
  s.last_status = e.last_status;
  return s;
}
}  // namespace

struct Scheduler::Lane {
  std::string name;
  std::unique_ptr<providers::Provider> provider;
  int concurrency = 4;
  std::vector<RateLimiter> limiters;  // per endpoint
  int in_flight = 0;
  bool manual_pause = false;
  double pause_until = 0;  // monotonic
  bool offline = false;
  int probe_failures = 0;
  double next_probe_at = 0;
  bool probe_in_flight = false;
  bool auth_in_flight = false;
  int auth_failures = 0;
  double auth_retry_at = 0;
  bool retiring = false;
  std::optional<double> due_wall;  // earliest due row (wall); nullopt: ask the store
  std::deque<store::Event> ready;  // claimed ahead (inflight in the store), not yet sent
  std::string last_error;
  // Counters since start.
  std::map<std::string, uint64_t> requests;  // by status ("200", "error")
  uint64_t delivered = 0, dead_expired = 0, dead_permanent = 0, retries = 0;
  uint64_t rate_limited = 0, offline_pauses = 0;
};

Scheduler::Scheduler(store::Store* store, providers::HttpTransport* transport, Clock* clock,
                     Random* random, SchedulerOptions options)
    : store_(store), transport_(transport), clock_(clock), random_(random), options_(options) {}

Scheduler::~Scheduler() = default;

void Scheduler::Configure(std::vector<LaneSpec> specs) {
  std::set<std::string> named;
  for (auto& spec : specs) {
    std::string name = spec.provider->name();
    named.insert(name);
    auto& slot = lanes_[name];
    if (!slot) {
      slot = std::make_unique<Lane>();
      slot->name = name;
    }
    Lane* lane = slot.get();
    lane->retiring = false;
    lane->concurrency = spec.concurrency;
    auto endpoints = spec.provider->endpoints();
    std::vector<RateLimiter> limiters;
    for (size_t i = 0; i < endpoints.size(); ++i) {
      auto it = spec.limits.find(i);
      providers::Rate rate = it != spec.limits.end() ? it->second : endpoints[i].default_limit;
      // Keep the history of an unchanged limiter so a reload never resets it.
      if (i < lane->limiters.size() && lane->limiters[i].rate().count == rate.count &&
          lane->limiters[i].rate().period_s == rate.period_s) {
        limiters.push_back(lane->limiters[i]);
      } else {
        limiters.emplace_back(rate);
      }
    }
    lane->limiters = std::move(limiters);
    lane->provider = std::move(spec.provider);
    lane->due_wall.reset();
  }
  for (auto& [name, lane] : lanes_) {
    if (!named.count(name)) lane->retiring = true;
  }
}

std::map<std::string, providers::Provider*, std::less<>> Scheduler::Providers() const {
  std::map<std::string, providers::Provider*, std::less<>> out;
  for (const auto& [name, lane] : lanes_) {
    if (!lane->retiring) out[name] = lane->provider.get();
  }
  return out;
}

Scheduler::Lane* Scheduler::Find(std::string_view name) const {
  auto it = lanes_.find(name);
  return it == lanes_.end() ? nullptr : it->second.get();
}

double Scheduler::ToMono(double wall_time, double mono, double wall) const {
  return mono + (wall_time - wall);
}

void Scheduler::Notify(std::string_view provider) {
  if (Lane* lane = Find(provider)) lane->due_wall = 0;  // due now
}

bool Scheduler::SetPaused(std::string_view provider, bool paused) {
  Lane* lane = Find(provider);
  if (!lane || lane->retiring) return false;
  lane->manual_pause = paused;
  if (!paused) lane->due_wall.reset();
  return true;
}

double Scheduler::RunDue() {
  if (store_failed_) Flush();  // does the store take writes again?
  double mono = clock_->Monotonic();
  double wall = clock_->Now();
  double deadline = kInf;
  for (auto& [name, lane] : lanes_) RunLane(lane.get(), mono, wall, &deadline);
  for (auto it = lanes_.begin(); it != lanes_.end();) {
    if (it->second->retiring && it->second->in_flight == 0 && it->second->ready.empty())
      it = lanes_.erase(it);
    else
      ++it;
  }
  Flush();
  if (!outcomes_.empty()) deadline = std::min(deadline, mono + 1);  // settle failed: retry
  return deadline;
}

void Scheduler::RunLane(Lane* lane, double mono, double wall, double* deadline) {
  providers::Provider* p = lane->provider.get();
  const bool stopped = lane->retiring || lane->manual_pause || shutting_down_ || store_failed_;
  const bool needs_auth = p->NeedsAuth(wall);
  // Rows claimed ahead go back to pending while the lane cannot send them.
  if (stopped || mono < lane->pause_until || lane->offline || needs_auth) ReleaseReady(lane);
  if (stopped) return;
  if (mono < lane->pause_until) {
    *deadline = std::min(*deadline, lane->pause_until);
    return;
  }
  if (needs_auth) {
    if (lane->auth_in_flight) return;
    if (mono < lane->auth_retry_at) {
      *deadline = std::min(*deadline, lane->auth_retry_at);
      return;
    }
    if (lane->in_flight > 0) return;  // let requests with the old token finish first
    providers::HttpTransport::RequestId id = next_request_++;
    inflight_[id] = Pending{lane->name, true, false, {}};
    lane->auth_in_flight = true;
    ++lane->in_flight;
    transport_->Start(id, p->AuthRequest(wall));
    return;
  }
  // Is a row due in the store? Rows claimed ahead need no asking.
  auto due_now = [&]() {
    if (!lane->due_wall) {
      Flush();  // rows released back count for the due time
      std::optional<double> due;
      store::Status s = store_->NextDue(lane->name, &due);
      if (!s.ok()) {
        OUTBOXD_LOG_ERROR("lane {}: {}", lane->name, s.ToString());
        return false;
      }
      lane->due_wall = due.value_or(kInf);
    }
    if (*lane->due_wall > wall) {
      if (*lane->due_wall < kInf)
        *deadline = std::min(*deadline, ToMono(*lane->due_wall, mono, wall));
      return false;
    }
    return true;
  };
  // Bounded work per call, so clients are served between rounds even when a
  // huge backlog expires at once.
  for (int round = 0;; ++round) {
    if (round == kMaxRoundsPerRun) {
      *deadline = std::min(*deadline, mono);
      return;
    }
    int want, slots;
    if (lane->offline) {
      // One probe at a time, on its own backoff.
      if (lane->probe_in_flight) return;
      if (mono < lane->next_probe_at) {
        *deadline = std::min(*deadline, lane->next_probe_at);
        return;
      }
      if (!due_now()) return;
      want = slots = 1;
    } else {
      slots = lane->concurrency - lane->in_flight;
      if (slots <= 0) return;
      // A busy lane claims its free slots' rows plus as many again as its
      // concurrency, and starts the extra ones as slots free up: one claim
      // transaction per `concurrency` requests rather than per completion.
      const int ahead = lane->concurrency;
      int avail = 0;
      double next = kInf;
      for (const auto& l : lane->limiters) {
        avail = std::max(avail, l.Available(mono, slots + ahead));
        next = std::min(next, l.NextAllowed(mono));
      }
      if (avail <= 0) {
        *deadline = std::min(*deadline, next);
        return;
      }
      if (!lane->ready.empty()) {
        size_t n =
            std::min({static_cast<size_t>(slots), static_cast<size_t>(avail), lane->ready.size()});
        std::vector<store::Event> rows(std::make_move_iterator(lane->ready.begin()),
                                       std::make_move_iterator(lane->ready.begin() + n));
        lane->ready.erase(lane->ready.begin(), lane->ready.begin() + n);
        double released_until = StartEvents(lane, &rows, mono, wall, false);
        if (released_until > 0) {
          Flush();
          *deadline = std::min(*deadline, ToMono(released_until, mono, wall));
          return;
        }
        continue;
      }
      if (!due_now()) return;
      want = std::min({avail, options_.claim_batch, slots + ahead});
    }
    std::vector<store::Event> rows;
    // Outcomes not yet written (rows that expired or went back while
    // claiming) are written in the claim's own transaction.
    store::Status s = store_->SettleAndClaim(outcomes_, lane->name, wall, want, kLeaseS, &rows);
    if (s.ok()) outcomes_.clear();
    if (!s.ok()) {
      std::string error = "claim failed: " + s.ToString();
      if (lane->last_error != error) OUTBOXD_LOG_ERROR("lane {}: {}", lane->name, error);
      lane->last_error = error;
      *deadline = std::min(*deadline, mono + 1);
      return;
    }
    bool exhausted = static_cast<int>(rows.size()) < want;
    if (static_cast<int>(rows.size()) > slots) {
      lane->ready.assign(std::make_move_iterator(rows.begin() + slots),
                         std::make_move_iterator(rows.end()));
      rows.resize(static_cast<size_t>(slots));
    }
    double released_until = StartEvents(lane, &rows, mono, wall, lane->offline);
    if (released_until > 0) {
      // An endpoint without room: wait for it rather than claim again.
      Flush();
      *deadline = std::min(*deadline, ToMono(released_until, mono, wall));
      return;
    }
    if (exhausted) {
      Flush();  // rows settled this round count for the next due time
      lane->due_wall.reset();
      std::optional<double> due;
      if (store_->NextDue(lane->name, &due).ok()) {
        lane->due_wall = due.value_or(kInf);
        if (due && *due > wall) *deadline = std::min(*deadline, ToMono(*due, mono, wall));
        if (due && *due <= wall) *deadline = std::min(*deadline, mono);
      }
      if (lane->ready.empty()) return;
      continue;
    }
    if (lane->offline) return;
  }
}

void Scheduler::ReleaseReady(Lane* lane) {
  for (auto& e : lane->ready) {
    AddOutcome(lane, {e.id, store::OutcomeKind::kRelease, e.next_attempt_at, e.last_status,
                      e.last_error, std::nullopt, false});
    lane->due_wall = std::min(lane->due_wall.value_or(kInf), e.next_attempt_at);
  }
  lane->ready.clear();
}

double Scheduler::StartEvents(Lane* lane, std::vector<store::Event>* rows, double mono, double wall,
                              bool probe) {
  providers::Provider* p = lane->provider.get();
  double released_until = 0;
  for (auto& e : *rows) {
    if (wall - e.age_from >= options_.max_age_s) {
      ++lane->dead_expired;
      OUTBOXD_LOG_INFO("event {} ({}) expired after {} attempts", e.id, lane->name, e.attempts);
      AddOutcome(lane,
                 {e.id, store::OutcomeKind::kDead, wall, e.last_status,
                  "expired: older than delivery.max_age" +
                      (e.last_error.empty() ? std::string() : "; last error: " + e.last_error),
                  std::nullopt, false});
      continue;
    }
    StoredEvent view = View(e);
    auto [endpoint, cost] = p->EndpointOf(view);
    if (endpoint >= lane->limiters.size()) endpoint = 0;
    RateLimiter& limiter = lane->limiters[endpoint];
    double allowed = limiter.NextAllowed(mono, cost);
    if (allowed > mono) {
      // Another endpoint of this lane had room, this one has not: back to
      // pending for when it has, at no cost to the event.
      double at = wall + (allowed - mono);
      AddOutcome(lane, {e.id, store::OutcomeKind::kRelease, at, e.last_status, e.last_error,
                        std::nullopt, false});
      lane->due_wall = std::min(lane->due_wall.value_or(kInf), at);
      released_until = released_until > 0 ? std::min(released_until, at) : at;
      continue;
    }
    limiter.Take(mono, cost);
    providers::HttpRequest req = p->Build(view, wall);
    providers::HttpTransport::RequestId id = next_request_++;
    inflight_[id] = Pending{lane->name, false, probe, std::move(e)};
    ++lane->in_flight;
    if (probe) lane->probe_in_flight = true;
    transport_->Start(id, std::move(req));
  }
  return released_until;
}

void Scheduler::OnCompletions(std::vector<providers::HttpTransport::Completion>* done) {
  if (done->empty()) return;
  double mono = clock_->Monotonic();
  double wall = clock_->Now();
  for (auto& c : *done) {
    auto it = inflight_.find(c.id);
    if (it == inflight_.end()) continue;
    Pending p = std::move(it->second);
    inflight_.erase(it);
    Lane* lane = Find(p.lane);
    if (!lane) continue;
    --lane->in_flight;
    lane->requests[c.response.error == providers::TransportError::kNone
                       ? std::to_string(c.response.status)
                       : std::string("error")]++;
    if (p.auth) {
      DigestAuth(lane, c.response, mono, wall);
    } else {
      Digest(lane, &p, c.response, mono, wall);
    }
  }
  done->clear();
  // Settled at once: a crash may repeat only requests still in flight.
  Flush();
}

void Scheduler::DigestAuth(Lane* lane, const providers::HttpResponse& r, double mono, double wall) {
  lane->auth_in_flight = false;
  providers::AuthResult a = lane->provider->HandleAuthResponse(r, wall);
  if (a.ok) {
    if (lane->auth_failures > 0) OUTBOXD_LOG_INFO("lane {}: token obtained", lane->name);
    lane->auth_failures = 0;
    lane->last_error.clear();
    lane->due_wall.reset();
    return;
  }
  ++lane->auth_failures;
  double delay = std::max(options_.auth_retry.base_s,
                          options_.auth_retry.Delay(lane->auth_failures - 1, random_));
  if (a.permanent) delay = std::max(delay, options_.auth_retry.Ceiling(lane->auth_failures));
  lane->auth_retry_at = mono + delay;
  if (lane->last_error != a.reason) {
    OUTBOXD_LOG_WARN("lane {}: {}; next try in {:.0f}s", lane->name, a.reason, delay);
  }
  lane->last_error = a.reason;
}

void Scheduler::Digest(Lane* lane, Pending* p, const providers::HttpResponse& r, double mono,
                       double wall) {
  const store::Event& e = p->event;
  if (p->probe) lane->probe_in_flight = false;
  Verdict v = lane->provider->Classify(View(e), r, wall);
  if (v.lane_pause_until && *v.lane_pause_until > wall) {
    double until = ToMono(*v.lane_pause_until, mono, wall);
    if (until > lane->pause_until) {
      lane->pause_until = until;
      OUTBOXD_LOG_INFO("lane {}: paused for {:.1f}s as the server asked", lane->name,
                       *v.lane_pause_until - wall);
    }
  }
  bool expired = wall - e.age_from >= options_.max_age_s;
  switch (v.kind) {
    case VerdictKind::kDelivered:
      ++lane->delivered;
      if (lane->offline) {
        OUTBOXD_LOG_INFO("lane {}: reachable again; draining", lane->name);
        lane->offline = false;
        lane->probe_failures = 0;
        lane->due_wall.reset();
      }
      lane->last_error.clear();
      AddOutcome(lane, {e.id, store::OutcomeKind::kDelivered, wall, v.status, "", v.response});
      return;
    case VerdictKind::kPermanent:
      ++lane->dead_permanent;
      lane->last_error = v.reason;
      OUTBOXD_LOG_INFO("event {} ({}) failed permanently: {}", e.id, lane->name, v.reason);
      AddOutcome(lane, {e.id, store::OutcomeKind::kDead, wall, v.status, v.reason});
      return;
    case VerdictKind::kRetry: {
      lane->last_error = v.reason;
      if (expired) break;
      ++lane->retries;
      double at = wall + options_.backoff.Delay(e.attempts, random_);
      if (v.retry_at > at) at = v.retry_at;
      AddOutcome(lane, {e.id, store::OutcomeKind::kRetry, at, v.status, v.reason, std::nullopt,
                        true, v.next_generation});
      lane->due_wall = std::min(lane->due_wall.value_or(kInf), at);
      return;
    }
    case VerdictKind::kRateLimited: {
      ++lane->rate_limited;
      lane->last_error = v.reason;
      double until = v.lane_pause_until.value_or(wall + 1);
      if (ToMono(until, mono, wall) > lane->pause_until)
        lane->pause_until = ToMono(until, mono, wall);
      AddOutcome(lane, {e.id, store::OutcomeKind::kRetry, std::max(until, wall), v.status, v.reason,
                        std::nullopt, false});
      lane->due_wall = std::min(lane->due_wall.value_or(kInf), until);
      return;
    }
    case VerdictKind::kOffline: {
      lane->last_error = v.reason;
      if (!lane->offline) {
        lane->offline = true;
        ++lane->offline_pauses;
        OUTBOXD_LOG_WARN("lane {}: unreachable ({}); probing", lane->name, v.reason);
      }
      if (p->probe) ++lane->probe_failures;
      lane->next_probe_at =
          mono + std::max(0.05, options_.probe.Delay(lane->probe_failures, random_));
      if (expired && p->probe) break;
      // Only the probe pays an attempt: queued events do not burn theirs.
      // The row keeps its place, so the same oldest event probes next time.
      AddOutcome(lane, {e.id, store::OutcomeKind::kRetry, std::min(e.next_attempt_at, wall),
                        v.status, v.reason, std::nullopt, p->probe});
      lane->due_wall = std::min(lane->due_wall.value_or(kInf), wall);
      return;
    }
    case VerdictKind::kRefreshAuth:
      lane->last_error = v.reason;
      OUTBOXD_LOG_INFO("lane {}: credentials refused ({}); fetching a new token", lane->name,
                       v.reason);
      AddOutcome(lane,
                 {e.id, store::OutcomeKind::kRetry, wall, v.status, v.reason, std::nullopt, false});
      lane->due_wall = std::min(lane->due_wall.value_or(kInf), wall);
      return;
  }
  // Expired while failing.
  ++lane->dead_expired;
  AddOutcome(lane,
             {e.id, store::OutcomeKind::kDead, wall, v.status,
              "expired: older than delivery.max_age; last error: " + v.reason, std::nullopt, true});
}

void Scheduler::AddOutcome(Lane* lane, store::Outcome o) {
  o.provider = lane->name;
  outcomes_.push_back(std::move(o));
  if (outcomes_.size() >= kMaxPendingOutcomes) Flush();
}

void Scheduler::Flush() {
  if (outcomes_.empty()) return;
  store::Status s = store_->Settle(outcomes_);
  if (!s.ok()) {
    if (!store_failed_)
      OUTBOXD_LOG_ERROR("settling {} outcomes failed: {}", outcomes_.size(), s.ToString());
    store_failed_ = true;  // no new claims until the store takes writes again
    return;
  }
  store_failed_ = false;
  outcomes_.clear();
}

void Scheduler::BeginShutdown() { shutting_down_ = true; }

bool Scheduler::Idle() const { return inflight_.empty() && outcomes_.empty(); }

void Scheduler::ReleaseInFlight() {
  double wall = clock_->Now();
  for (auto& [id, p] : inflight_) {
    if (p.auth) continue;
    outcomes_.push_back({p.event.id, store::OutcomeKind::kRelease, wall, p.event.last_status,
                         p.event.last_error, std::nullopt, false, false, p.event.provider});
  }
  inflight_.clear();
  for (auto& [name, lane] : lanes_) ReleaseReady(lane.get());
  for (auto& [name, lane] : lanes_) {
    lane->in_flight = 0;
    lane->probe_in_flight = false;
    lane->auth_in_flight = false;
  }
  Flush();
}

bool Scheduler::Describe(std::string_view provider, LaneInfo* info) const {
  Lane* lane = Find(provider);
  if (!lane) return false;
  double mono = clock_->Monotonic();
  double wall = clock_->Now();
  if (lane->manual_pause)
    info->state = "paused";
  else if (lane->offline)
    info->state = "probing";
  else if (lane->auth_failures > 0 || lane->auth_in_flight)
    info->state = "auth";
  else if (lane->pause_until > mono)
    info->state = "rate_limited";
  else
    info->state = "active";
  info->paused_until = lane->pause_until > mono ? wall + (lane->pause_until - mono) : 0;
  std::string rates;
  for (const auto& l : lane->limiters) rates += (rates.empty() ? "" : ", ") + FormatRate(l.rate());
  info->rate_limit = rates;
  info->in_flight = lane->in_flight;
  info->last_error = lane->last_error;
  return true;
}

std::string Scheduler::Summary() const {
  std::string out;
  for (const auto& [name, lane] : lanes_) {
    LaneInfo info;
    Describe(name, &info);
    out += (out.empty() ? "" : ", ") + name + " " + info.state;
  }
  return out;
}

void Scheduler::AppendMetrics(std::string* out) const {
  auto it = std::back_inserter(*out);
  AppendMetricHeader(out, "outboxd_requests_total", "counter",
                     "HTTP requests by provider and answer status (error: no answer).");
  for (const auto& [name, lane] : lanes_) {
    for (const auto& [status, n] : lane->requests) {
      fmt::format_to(it, "outboxd_requests_total{{provider=\"{}\",status=\"{}\"}} {}\n",
                     EscapeLabel(name), status, n);
    }
  }
  struct Counter {
    const char* metric;
    const char* help;
    uint64_t Lane::*field;
  };
  const Counter counters[] = {
      {"outboxd_delivered_total", "Events delivered.", &Lane::delivered},
      {"outboxd_retries_total", "Transient failures rescheduled with backoff.", &Lane::retries},
      {"outboxd_rate_limited_total", "Answers that paused a lane for a rate limit (429).",
       &Lane::rate_limited},
      {"outboxd_offline_total", "Times a lane went offline and started probing.",
       &Lane::offline_pauses},
  };
  for (const auto& c : counters) {
    AppendMetricHeader(out, c.metric, "counter", c.help);
    for (const auto& [name, lane] : lanes_) {
      fmt::format_to(it, "{}{{provider=\"{}\"}} {}\n", c.metric, EscapeLabel(name),
                     (*lane).*(c.field));
    }
  }
  AppendMetricHeader(out, "outboxd_dead_total", "counter", "Events that went dead, by reason.");
  for (const auto& [name, lane] : lanes_) {
    fmt::format_to(it, "outboxd_dead_total{{provider=\"{}\",reason=\"expired\"}} {}\n",
                   EscapeLabel(name), lane->dead_expired);
    fmt::format_to(it, "outboxd_dead_total{{provider=\"{}\",reason=\"permanent\"}} {}\n",
                   EscapeLabel(name), lane->dead_permanent);
  }
  double mono = clock_->Monotonic();
  AppendMetricHeader(out, "outboxd_lane_paused", "gauge", "1 while a lane is paused by request.");
  for (const auto& [name, lane] : lanes_) {
    fmt::format_to(it, "outboxd_lane_paused{{provider=\"{}\"}} {}\n", EscapeLabel(name),
                   lane->manual_pause ? 1 : 0);
  }
  AppendMetricHeader(out, "outboxd_lane_probing", "gauge",
                     "1 while a lane's provider is unreachable and probed.");
  for (const auto& [name, lane] : lanes_) {
    fmt::format_to(it, "outboxd_lane_probing{{provider=\"{}\"}} {}\n", EscapeLabel(name),
                   lane->offline ? 1 : 0);
  }
  AppendMetricHeader(out, "outboxd_lane_rate_limited", "gauge",
                     "1 while a lane waits for a rate-limit reset the server announced.");
  for (const auto& [name, lane] : lanes_) {
    fmt::format_to(it, "outboxd_lane_rate_limited{{provider=\"{}\"}} {}\n", EscapeLabel(name),
                   lane->pause_until > mono ? 1 : 0);
  }
  AppendMetricHeader(out, "outboxd_in_flight", "gauge", "Requests in flight per provider.");
  for (const auto& [name, lane] : lanes_) {
    fmt::format_to(it, "outboxd_in_flight{{provider=\"{}\"}} {}\n", EscapeLabel(name),
                   lane->in_flight);
  }
}

}  // namespace outboxd
