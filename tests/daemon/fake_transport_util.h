// A fake HttpTransport on a fake clock: records every request with the time
// it started, and answers through a responder the test gives. A responder
// may leave a request hanging: it then fails with a timeout once its
// timeout_s has passed on the fake clock.
#ifndef OUTBOXD_TESTS_DAEMON_FAKE_TRANSPORT_UTIL_H_
#define OUTBOXD_TESTS_DAEMON_FAKE_TRANSPORT_UTIL_H_

#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "daemon/clock.h"
#include "daemon/scheduler.h"
#include "providers/http.h"

namespace outboxd::testing {

class FakeTransport : public providers::HttpTransport {
 public:
  struct Sent {
    RequestId id;
    providers::HttpRequest request;
    double at;  // monotonic
  };
  // nullopt: the request hangs (until its timeout).
  using Responder = std::function<std::optional<providers::HttpResponse>(const Sent&)>;

  explicit FakeTransport(FakeClock* clock) : clock_(clock) {}

  void Start(RequestId id, providers::HttpRequest request) override;
  void Wait(std::span<providers::WaitFd>, int, std::vector<Completion>* done) override;
  void Wakeup() override {}
  size_t InFlight() const override { return open_.size(); }

  // Answers what the responder answers; fails hung requests past their timeout.
  void Respond(const Responder& responder);
  // The earliest hung request's timeout, or +inf.
  double NextTimeout() const;

  std::vector<Sent> sent;  // every request, in order

 private:
  FakeClock* clock_;
  std::map<RequestId, Sent> open_;
  std::map<RequestId, double> hung_;  // id -> timeout at
  std::vector<Completion> ready_;
};

// Runs the scheduler on the fake clock until `until` (monotonic), answering
// requests with `responder`.
void RunUntil(Scheduler* s, FakeTransport* t, FakeClock* clock, double until,
              const FakeTransport::Responder& responder);

class FixedRandom : public Random {
 public:
  explicit FixedRandom(std::vector<double> values) : values_(std::move(values)) {}
  double Uniform() override {
    double v = values_[next_ % values_.size()];
    ++next_;
    return v;
  }

 private:
  std::vector<double> values_;
  size_t next_ = 0;
};

providers::HttpResponse Status(int status, std::vector<providers::Header> headers = {});
providers::HttpResponse Offline();

}  // namespace outboxd::testing

#endif  // OUTBOXD_TESTS_DAEMON_FAKE_TRANSPORT_UTIL_H_
