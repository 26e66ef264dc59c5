#include "tests/daemon/fake_transport_util.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace outboxd::testing {

void FakeTransport::Start(RequestId id, providers::HttpRequest request) {
  Sent s{id, std::move(request), clock_->Monotonic()};
  sent.push_back(s);
  open_[id] = std::move(s);
}

void FakeTransport::Wait(std::span<providers::WaitFd>, int, std::vector<Completion>* done) {
  for (auto& c : ready_) done->push_back(std::move(c));
  ready_.clear();
}

void FakeTransport::Respond(const Responder& responder) {
  double now = clock_->Monotonic();
  for (auto it = open_.begin(); it != open_.end();) {
    auto h = hung_.find(it->first);
    if (h != hung_.end()) {
      if (h->second <= now) {
        providers::HttpResponse r;
        r.error = providers::TransportError::kTimeout;
        r.error_message = "timed out";
        ready_.push_back({it->first, std::move(r)});
        hung_.erase(h);
        it = open_.erase(it);
      } else {
        ++it;
      }
      continue;
    }
    std::optional<providers::HttpResponse> r = responder(it->second);
    if (!r) {
      hung_[it->first] = it->second.at + it->second.request.timeout_s;
      ++it;
      continue;
    }
    ready_.push_back({it->first, std::move(*r)});
    it = open_.erase(it);
  }
}

double FakeTransport::NextTimeout() const {
  double t = std::numeric_limits<double>::infinity();
  for (const auto& [id, at] : hung_) t = std::min(t, at);
  return t;
}

void RunUntil(Scheduler* s, FakeTransport* t, FakeClock* clock, double until,
              const FakeTransport::Responder& responder) {
  for (int guard = 0; guard < 50'000'000; ++guard) {
    double deadline = s->RunDue();
    t->Respond(responder);
    std::vector<providers::HttpTransport::Completion> done;
    t->Wait({}, 0, &done);
    if (!done.empty()) {
      s->OnCompletions(&done);
      continue;
    }
    double next = std::min(deadline, t->NextTimeout());
    if (clock->Monotonic() >= until) return;
    if (next > until) {
      clock->AdvanceTo(until);
      continue;
    }
    // Never stand still: a deadline in the past moves time by a microsecond.
    clock->AdvanceTo(std::max(next, clock->Monotonic() + 1e-6));
  }
}

providers::HttpResponse Status(int status, std::vector<providers::Header> headers) {
  providers::HttpResponse r;
  r.status = status;
  r.headers = std::move(headers);
  return r;
}

providers::HttpResponse Offline() {
  providers::HttpResponse r;
  r.error = providers::TransportError::kConnect;
  r.error_message = "connection refused";
  return r;
}

}  // namespace outboxd::testing
