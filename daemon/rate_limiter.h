// RateLimiter: at most `count` cost units in any window of `period_s`
// seconds, spread smoothly.
//
// Two rules together: a sliding window (the exact cap: no window of the
// period ever holds more than the limit, which a token bucket with any burst
// cannot promise) and a pacer (generic cell rate: one unit every
// period/count seconds, a small burst allowed) so the limit is used evenly
// and a server's own token bucket is never tripped by a burst.
// Time is passed in (monotonic seconds); nothing here reads a clock.
// Thread rules: one thread.
#ifndef OUTBOXD_DAEMON_RATE_LIMITER_H_
#define OUTBOXD_DAEMON_RATE_LIMITER_H_

#include <deque>
#include <limits>
#include <utility>

#include "providers/provider.h"

namespace outboxd {

class RateLimiter {
 public:
  // rate.count <= 0: unlimited.
  explicit RateLimiter(providers::Rate rate = {}, double burst = 0);

  bool unlimited() const { return interval_ <= 0; }
  const providers::Rate& rate() const { return rate_; }

  // Earliest time at which `cost` units may be taken (<= now: at once).
  double NextAllowed(double now, double cost = 1) const;
  // How many unit-cost sends may go now.
  int Available(double now, int at_most) const;
  // Records a send of `cost` units at `now`. REQUIRES: NextAllowed(now, cost) <= now.
  void Take(double now, double cost = 1);

 private:
  void Expire(double now) const;

  providers::Rate rate_;
  double interval_ = 0;  // seconds per unit; 0: unlimited
  double window_ = 0;    // the sliding window, a hair longer than the period
  double burst_ = 1;     // units the pacer lets go at once
  double tat_ = -std::numeric_limits<double>::infinity();  // theoretical arrival time
  mutable std::deque<std::pair<double, double>> sent_;     // (time, cost) within the window
  mutable double window_cost_ = 0;
};

}  // namespace outboxd

#endif  // OUTBOXD_DAEMON_RATE_LIMITER_H_
