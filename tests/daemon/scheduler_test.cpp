// The delivery engine on a fake clock and a fake transport, with a real
// store: backoff, rate limits, server pauses, offline probing, lanes.
#include "daemon/scheduler.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>

#include "store/store.h"
#include "tests/common/daemon_process.h"
#include "tests/daemon/fake_transport_util.h"

namespace outboxd {
namespace {

using testing::FakeTransport;
using testing::FixedRandom;
using testing::Offline;
using testing::Status;

struct Engine {
  explicit Engine(std::vector<double> randoms = {0.5}, SchedulerOptions options = {})
      : random(std::move(randoms)), transport(&clock) {
    store::Options o;
    o.path = dir / "outbox.db";
    o.synchronous_full = false;
    o.max_size_bytes = 1ll << 30;
    REQUIRE(store::Store::Open(o, &store).ok());
    scheduler = std::make_unique<Scheduler>(store.get(), &transport, &clock, &random, options);
  }
  void AddLane(const std::string& name, const std::string& type,
               std::map<std::string, std::string> values, int concurrency = 4,
               std::map<size_t, providers::Rate> limits = {}) {
    values["timeout"] = "10";
    configured.push_back({name, type, values, concurrency, limits});
    // Configure names every lane: the ones it leaves out are retired.
    std::vector<LaneSpec> specs;
    for (const auto& c : configured) {
      providers::ProviderSettings s{c.name, c.type, c.values, {}};
      std::string error;
      LaneSpec spec;
      spec.provider = providers::NewProvider(s, &error);
      REQUIRE_MESSAGE(spec.provider, error);
      spec.concurrency = c.concurrency;
      spec.limits = c.limits;
      specs.push_back(std::move(spec));
    }
    scheduler->Configure(std::move(specs));
  }
  // Enqueues n events of `json` for a lane, in batches.
  std::vector<int64_t> Enqueue(const std::string& lane, const std::string& json, int n) {
    auto providers = scheduler->Providers();
    providers::Provider* p = providers.at(lane);
    rapidjson::Document d;
    d.Parse(json.c_str());
    std::vector<int64_t> ids;
    for (int done = 0; done < n;) {
      std::vector<std::vector<store::NewEvent>> batches(1);
      for (int i = 0; i < 5000 && done < n; ++i, ++done) {
        providers::Validated v;
        std::string error;
        REQUIRE(p->Validate(d, "", clock.Now(), &v, &error));
        batches[0].push_back({lane, "", v.route, v.body, clock.Now()});
      }
      std::vector<store::BatchResult> results;
      REQUIRE(store->Enqueue(batches, &results).ok());
      for (auto& r : results[0].ids) ids.push_back(r.id);
    }
    scheduler->Notify(lane);
    return ids;
  }
  int64_t Count(const std::string& lane, store::State state) {
    std::map<std::string, store::ProviderStats> stats;
    REQUIRE(store->Stats(&stats).ok());
    return stats[lane].count[static_cast<int>(state)];
  }
  store::Event Get(int64_t id) {
    store::Event e;
    REQUIRE(store->Get(id, &e).ok());
    return e;
  }
  std::vector<double> SendTimes(const std::string& url_part) {
    std::vector<double> t;
    for (const auto& s : transport.sent) {
      if (s.request.url.find(url_part) != std::string::npos) t.push_back(s.at);
    }
    return t;
  }
  void Run(double seconds, const FakeTransport::Responder& r) {
    testing::RunUntil(scheduler.get(), &transport, &clock, clock.Monotonic() + seconds, r);
  }

  testing::TempDir dir;
  FakeClock clock;
  FixedRandom random;
  FakeTransport transport;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<Scheduler> scheduler;
  struct Configured {
    std::string name, type;
    std::map<std::string, std::string> values;
    int concurrency;
    std::map<size_t, providers::Rate> limits;
  };
  std::vector<Configured> configured;
};

const char* kHook = R"({"n":1})";
std::map<std::string, std::string> HookAt(const std::string& path) {
  return {{"url", "http://sink.test" + path}};
}
auto AlwaysOk = [](const FakeTransport::Sent&) { return std::optional(Status(200)); };

TEST_CASE("backoff is exponential with full jitter and capped") {
  BackoffPolicy p{1, 300};
  FixedRandom r({0.5, 0.25, 1.0 - 1e-12});
  CHECK(p.Ceiling(0) == 1);
  CHECK(p.Ceiling(3) == 8);
  CHECK(p.Ceiling(8) == 256);
  CHECK(p.Ceiling(9) == 300);
  CHECK(p.Ceiling(1000) == 300);
  CHECK(p.Delay(0, &r) == 0.5);
  CHECK(p.Delay(4, &r) == 4.0);
  CHECK(p.Delay(20, &r) == doctest::Approx(300));
}

TEST_CASE("a failing event is retried on the exact backoff sequence, then expires") {
  SchedulerOptions o;
  o.backoff = {1, 8};
  o.max_age_s = 100;
  Engine e({0.5}, o);
  e.AddLane("hook", "webhook", HookAt("/a"));
  auto ids = e.Enqueue("hook", kHook, 1);
  double start = e.clock.Now();
  e.Run(99.9, [](const FakeTransport::Sent&) { return std::optional(Status(503)); });
  auto times = e.SendTimes("/a");
  // Delays 0.5 * min(8, 2^n): 0.5, 1, 2, 4, 4, 4, ...
  REQUIRE(times.size() > 6);
  std::vector<double> expect = {0.5, 1, 2, 4, 4, 4};
  for (size_t i = 0; i < expect.size(); ++i) {
    CHECK(times[i + 1] - times[i] == doctest::Approx(expect[i]).epsilon(1e-6));
  }
  store::Event ev = e.Get(ids[0]);
  CHECK(ev.state == store::State::kPending);
  CHECK(ev.attempts == static_cast<int>(times.size()));
  CHECK(ev.last_status == 503);
  e.Run(10, [](const FakeTransport::Sent&) { return std::optional(Status(503)); });
  ev = e.Get(ids[0]);
  CHECK(ev.state == store::State::kDead);
  CHECK(ev.last_error.rfind("expired", 0) == 0);
  CHECK(e.clock.Now() - start >= 100);
}

TEST_CASE("a permanent answer makes the event dead at once with status and reason") {
  Engine e;
  e.AddLane("hook", "webhook", HookAt("/a"));
  auto ids = e.Enqueue("hook", kHook, 1);
  e.Run(1, [](const FakeTransport::Sent&) {
    auto r = Status(400);
    r.body = R"({"message":"field x is wrong"})";
    return std::optional(r);
  });
  store::Event ev = e.Get(ids[0]);
  CHECK(ev.state == store::State::kDead);
  CHECK(ev.last_status == 400);
  CHECK(ev.last_error == "HTTP 400: field x is wrong");
  CHECK(e.transport.sent.size() == 1);
}

TEST_CASE("1000/min over 10 minutes: no 60 s window over 1000, none after the first under 990") {
  Engine e;
  e.AddLane("moe", "moengage",
            {{"workspace_id", "WS"}, {"api_key", "k"}, {"base_url", "http://moe.test"}}, 8);
  e.Enqueue("moe", R"({"recommendationId":"r1"})", 50000);
  double t0 = e.clock.Monotonic();
  e.Run(600, AlwaysOk);
  auto times = e.SendTimes("/v1/recommendations/");
  REQUIRE(times.size() > 9000);
  size_t max_in_window = 0, min_after_first = SIZE_MAX;
  for (size_t i = 0; i < times.size(); ++i) {
    size_t j = std::lower_bound(times.begin(), times.end(), times[i] + 60) - times.begin();
    max_in_window = std::max(max_in_window, j - i);
  }
  for (double start = t0 + 60; start + 60 <= t0 + 600; start += 0.5) {
    auto a = std::lower_bound(times.begin(), times.end(), start);
    auto b = std::lower_bound(times.begin(), times.end(), start + 60);
    min_after_first = std::min(min_after_first, static_cast<size_t>(b - a));
  }
  MESSAGE("requests: " << times.size() << ", busiest 60 s window: " << max_in_window
                       << ", quietest after the first: " << min_after_first);
  CHECK(max_in_window <= 1000);
  CHECK(min_after_first >= 990);
  CHECK(e.Count("moe", store::State::kDelivered) == static_cast<int64_t>(times.size()));
}

// A lane answered 429 once with `headers`; returns the first and second
// send times and the attempts of its three events added up.
struct Storm {
  double first, next;
  int attempts;
};
Storm RateLimitedOnce(Engine& e, const std::string& lane, const std::string& event,
                      std::vector<providers::Header> headers) {
  auto ids = e.Enqueue(lane, event, 3);
  bool answered = false;
  e.Run(120, [&](const FakeTransport::Sent&) {
    if (!answered) {
      answered = true;
      return std::optional(Status(429, headers));
    }
    return std::optional(Status(200));
  });
  auto times = e.SendTimes("");
  REQUIRE(times.size() >= 2);
  // Each event delivered once; the 429 added no attempt to anyone.
  int attempts = 0;
  for (int64_t id : ids) {
    CHECK(e.Get(id).state == store::State::kDelivered);
    attempts += e.Get(id).attempts;
  }
  return {times[0], times[1], attempts};
}

TEST_CASE("a 429 pauses the lane until the announced reset and costs no attempt") {
  Engine e;
  double now_wall = e.clock.Now();
  double reset_in = 30;
  SUBCASE("MoEngage x-ratelimit-reset (epoch)") {
    e.AddLane("moe", "moengage",
              {{"workspace_id", "WS"}, {"api_key", "k"}, {"base_url", "http://m.test"}}, 1);
    auto s = RateLimitedOnce(
        e, "moe", R"({"recommendationId":"r"})",
        {{"x-ratelimit-limit", "1000"},
         {"x-ratelimit-remaining", "0"},
         {"x-ratelimit-reset", std::to_string(static_cast<int64_t>(now_wall + reset_in))}});
    CHECK(s.next >= s.first + reset_in - 1e-6);
    CHECK(s.next <= s.first + reset_in + 0.01);
    CHECK(s.attempts == 3);
  }
  SUBCASE("Novu RateLimit-Reset (seconds)") {
    e.AddLane("novu", "novu", {{"api_key", "k"}, {"base_url", "http://n.test"}}, 1);
    auto s = RateLimitedOnce(
        e, "novu", R"({"subscriberId":"s","messageId":"m","type":"primary","status":"done"})",
        {{"RateLimit-Remaining", "0"}, {"RateLimit-Reset", "30"}});
    CHECK(s.next >= s.first + reset_in - 1e-6);
    CHECK(s.next <= s.first + reset_in + 0.01);
    CHECK(s.attempts == 3);
  }
  SUBCASE("Retry-After in seconds") {
    e.AddLane("hook", "webhook", HookAt("/a"), 1);
    auto s = RateLimitedOnce(e, "hook", kHook, {{"Retry-After", "30"}});
    CHECK(s.next >= s.first + reset_in - 1e-6);
    CHECK(s.next <= s.first + reset_in + 0.01);
    CHECK(s.attempts == 3);
  }
  SUBCASE("Retry-After as an HTTP date") {
    e.AddLane("hook", "webhook", HookAt("/a"), 1);
    time_t at = static_cast<time_t>(now_wall + reset_in);
    char date[64];
    std::strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", std::gmtime(&at));
    auto s = RateLimitedOnce(e, "hook", kHook, {{"Retry-After", date}});
    CHECK(s.next >= s.first + reset_in - 1e-6);
    CHECK(s.next <= s.first + reset_in + 0.01);
    CHECK(s.attempts == 3);
  }
}

TEST_CASE("an hour offline with 10k queued burns no attempts; the first good probe drains") {
  Engine e;
  e.AddLane("hook", "webhook", HookAt("/a"), 4);
  auto ids = e.Enqueue("hook", kHook, 10000);
  double back_at = e.clock.Monotonic() + 3600;
  auto responder = [&](const FakeTransport::Sent& s) {
    return s.at < back_at ? std::optional(Offline()) : std::optional(Status(200));
  };
  e.Run(3600, responder);
  size_t offline_requests = e.transport.sent.size();
  MESSAGE("requests while offline: " << offline_requests);
  CHECK(offline_requests < 200);  // probes on a capped backoff, not 10k retries
  CHECK(e.Count("hook", store::State::kDelivered) == 0);
  int with_attempts = 0;
  int64_t probe_id = 0;
  for (int64_t id : ids) {
    if (e.Get(id).attempts > 0) {
      ++with_attempts;
      probe_id = id;
    }
  }
  CHECK(with_attempts == 1);  // only the probe's event
  e.Run(200, responder);
  CHECK(e.Count("hook", store::State::kDelivered) == 10000);
  // Draining started at the first successful probe: the next request went
  // right after it, not a probe interval later.
  auto times = e.SendTimes("/a");
  auto first_ok = std::lower_bound(times.begin(), times.end(), back_at);
  REQUIRE(first_ok != times.end());
  REQUIRE(first_ok + 1 != times.end());
  CHECK(*(first_ok + 1) - *first_ok < 0.01);
  // Every other event was delivered at its first attempt.
  for (int64_t id : ids) {
    if (id != probe_id && e.Get(id).attempts != 1) FAIL("event " << id << " paid extra attempts");
  }
}

TEST_CASE("a lane hanging on timeouts does not slow another") {
  Engine e;
  e.AddLane("slow", "webhook", HookAt("/slow"), 2);
  e.AddLane("fast", "webhook", {{"url", "http://sink.test/fast"}, {"rate_limit", "20/s"}}, 4,
            {{0, {20, 1}}});
  e.Enqueue("slow", kHook, 500);
  e.Enqueue("fast", kHook, 5000);
  e.Run(60, [](const FakeTransport::Sent& s) -> std::optional<providers::HttpResponse> {
    if (s.request.url.find("/slow") != std::string::npos) return std::nullopt;  // hangs
    return Status(200);
  });
  int64_t fast = e.Count("fast", store::State::kDelivered);
  MESSAGE("fast lane delivered " << fast << " in 60 s at 20/s");
  CHECK(fast >= 0.99 * 20 * 60);
  CHECK(fast <= 20 * 60 + 20);
  CHECK(e.Count("slow", store::State::kDelivered) == 0);
  CHECK(e.SendTimes("/slow").size() < 20);  // probing, one at a time
}

TEST_CASE("an event enqueued to an idle lane is sent without waiting for a poll") {
  Engine e;
  e.AddLane("hook", "webhook", HookAt("/a"));
  double d = e.scheduler->RunDue();
  CHECK(std::isinf(d));  // idle: nothing to wake for
  e.Enqueue("hook", kHook, 1);
  e.scheduler->RunDue();  // no clock movement
  REQUIRE(e.transport.sent.size() == 1);
  CHECK(e.transport.sent[0].at == e.clock.Monotonic());
}

TEST_CASE("rows claimed when the process died are sent again after restart") {
  Engine e;
  e.AddLane("hook", "webhook", HookAt("/a"));
  auto ids = e.Enqueue("hook", kHook, 3);
  e.scheduler->RunDue();
  REQUIRE(e.transport.sent.size() == 3);
  CHECK(e.Count("hook", store::State::kInflight) == 3);
  // "Crash": the requests never complete and nothing is settled.
  e.scheduler.reset();
  e.store.reset();
  store::Options o;
  o.path = e.dir / "outbox.db";
  REQUIRE(store::Store::Open(o, &e.store).ok());
  CHECK(e.store->recovered_on_open() == 3);
  FakeTransport fresh(&e.clock);
  Scheduler again(e.store.get(), &fresh, &e.clock, &e.random, {});
  std::vector<LaneSpec> specs(1);
  std::string error;
  specs[0].provider = providers::NewProvider({"hook", "webhook", HookAt("/a"), {}}, &error);
  again.Configure(std::move(specs));
  testing::RunUntil(&again, &fresh, &e.clock, e.clock.Monotonic() + 5, AlwaysOk);
  CHECK(fresh.sent.size() == 3);
  CHECK(fresh.sent[0].request.body == R"({"n":1})");
  CHECK(e.Count("hook", store::State::kDelivered) == 3);
}

TEST_CASE("a MOOST lane fetches its token first and refreshes it once after a 401") {
  Engine e;
  e.AddLane("moost", "moost",
            {{"client_id", "c"}, {"client_secret", "s"}, {"base_url", "http://moost.test"}});
  e.Enqueue("moost", R"({"pushNotificationId":"n1","actionQualifier":"DISMISS"})", 2);
  int tokens = 0, events = 0;
  e.Run(10, [&](const FakeTransport::Sent& s) {
    if (s.request.url.find("/auth/token/v1") != std::string::npos) {
      ++tokens;
      auto r = Status(200);
      r.body = R"({"access_token":"tok)" + std::to_string(tokens) + "\"}";
      return std::optional(r);
    }
    ++events;
    // The first event request gets a 401: the token is refreshed once.
    return std::optional(Status(events == 1 ? 401 : 200));
  });
  CHECK(tokens == 2);
  CHECK(e.Count("moost", store::State::kDelivered) == 2);
  CHECK(e.transport.sent[0].request.url.find("/auth/token/v1") != std::string::npos);
  CHECK(e.transport.sent.back().request.headers[0].value == "Bearer tok2");
}

TEST_CASE("pause and resume by request; stats say so") {
  Engine e;
  e.AddLane("hook", "webhook", HookAt("/a"));
  CHECK(e.scheduler->SetPaused("hook", true));
  CHECK_FALSE(e.scheduler->SetPaused("nope", true));
  e.Enqueue("hook", kHook, 5);
  e.Run(10, AlwaysOk);
  CHECK(e.transport.sent.empty());
  LaneControl::LaneInfo info;
  REQUIRE(e.scheduler->Describe("hook", &info));
  CHECK(info.state == "paused");
  CHECK(e.scheduler->SetPaused("hook", false));
  e.Run(10, AlwaysOk);
  CHECK(e.Count("hook", store::State::kDelivered) == 5);
}

TEST_CASE("rows claimed ahead wait in order and go back to pending on pause and on stop") {
  Engine e;
  e.AddLane("hook", "webhook", HookAt("/a"), 2);
  auto ids = e.Enqueue("hook", kHook, 10);
  e.scheduler->RunDue();
  // Two requests go out; two more rows are claimed ahead of their slots.
  CHECK(e.transport.sent.size() == 2);
  CHECK(e.Count("hook", store::State::kInflight) == 4);
  CHECK(e.Count("hook", store::State::kPending) == 6);
  // Paused: what was claimed ahead is pending again, due as before.
  CHECK(e.scheduler->SetPaused("hook", true));
  e.scheduler->RunDue();
  CHECK(e.Count("hook", store::State::kInflight) == 2);
  CHECK(e.Count("hook", store::State::kPending) == 8);
  CHECK(e.Get(ids[2]).attempts == 0);
  CHECK(e.Get(ids[2]).next_attempt_at <= e.clock.Now());
  CHECK(e.scheduler->SetPaused("hook", false));
  e.scheduler->RunDue();
  CHECK(e.Count("hook", store::State::kInflight) == 2);  // no free slot: nothing claimed
  // Stopping: everything claimed, sent or not, is pending again.
  e.scheduler->BeginShutdown();
  e.scheduler->ReleaseInFlight();
  CHECK(e.scheduler->Idle());
  CHECK(e.Count("hook", store::State::kPending) == 10);
  CHECK(e.Count("hook", store::State::kInflight) == 0);
}

TEST_CASE("a busy lane sends every row once and in order, claimed ahead or not") {
  Engine e;
  e.AddLane("hook", "webhook", HookAt("/a"), 4);
  for (int i = 0; i < 200; ++i) e.Enqueue("hook", fmt::format(R"({{"n":{}}})", i), 1);
  e.Run(10, AlwaysOk);
  CHECK(e.Count("hook", store::State::kDelivered) == 200);
  REQUIRE(e.transport.sent.size() == 200);
  for (int i = 0; i < 200; ++i) {
    CHECK(e.transport.sent[static_cast<size_t>(i)].request.body == fmt::format(R"({{"n":{}}})", i));
  }
}

TEST_CASE("graceful stop returns in-flight rows to pending without an attempt") {
  Engine e;
  e.AddLane("hook", "webhook", HookAt("/a"));
  auto ids = e.Enqueue("hook", kHook, 2);
  e.scheduler->RunDue();
  e.scheduler->BeginShutdown();
  CHECK_FALSE(e.scheduler->Idle());
  e.scheduler->ReleaseInFlight();
  CHECK(e.scheduler->Idle());
  for (int64_t id : ids) {
    CHECK(e.Get(id).state == store::State::kPending);
    CHECK(e.Get(id).attempts == 0);
  }
}

}  // namespace
}  // namespace outboxd

namespace outboxd {
namespace {

TEST_CASE("a backlog that expired offline is buried in bounded rounds") {
  SchedulerOptions o;
  o.max_age_s = 3600;
  Engine e({0.5}, o);
  e.AddLane("hook", "webhook", HookAt("/a"));
  e.Enqueue("hook", kHook, 20000);
  e.clock.Advance(7200);  // everything is older than max_age now
  double deadline = e.scheduler->RunDue();
  // One call does a bounded amount and asks to be called again at once.
  CHECK(deadline <= e.clock.Monotonic());
  CHECK(e.Count("hook", store::State::kDead) < 20000);
  CHECK(e.Count("hook", store::State::kDead) > 0);
  e.Run(10, AlwaysOk);
  CHECK(e.Count("hook", store::State::kDead) == 20000);
  CHECK(e.transport.sent.empty());
}

}  // namespace
}  // namespace outboxd
