#include "daemon/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace outboxd {

RateLimiter::RateLimiter(providers::Rate rate, double burst) : rate_(rate) {
  if (rate.count > 0 && rate.period_s > 0) {
    interval_ = rate.period_s / rate.count;
    // The window is kept 0.2% longer than the period, so arrival jitter on
    // the way to the server never puts one request too many in its window.
    window_ = rate.period_s * 1.002;
    // Default burst: a two-hundredth of the limit, 1 to 5 requests. Small,
    // because a burst that meets the window's edge is capacity lost there.
    burst_ = burst > 0 ? burst : std::clamp(std::floor(rate.count / 200), 1.0, 5.0);
    burst_ = std::min(burst_, rate.count);
  }
}

void RateLimiter::Expire(double now) const {
  // A send at t leaves the window at t + period: windows are half-open.
  while (!sent_.empty() && sent_.front().first + window_ <= now) {
    window_cost_ -= sent_.front().second;
    sent_.pop_front();
  }
  if (sent_.empty()) window_cost_ = 0;
}

double RateLimiter::NextAllowed(double now, double cost) const {
  if (unlimited()) return now;
  Expire(now);
  // Pacer: `burst` units may go at once; past that one per interval.
  double t = std::max(now, tat_ + (cost - burst_) * interval_);
  // Window: wait until enough old sends leave it.
  double excess = window_cost_ + cost - rate_.count;
  if (excess > 1e-9) {
    for (const auto& [at, c] : sent_) {
      excess -= c;
      if (excess <= 1e-9) {
        t = std::max(t, at + window_);
        break;
      }
    }
  }
  return t;
}

int RateLimiter::Available(double now, int at_most) const {
  if (unlimited()) return at_most;
  Expire(now);
  double pacer = tat_ <= now ? burst_ : std::floor((now - tat_) / interval_ + burst_ + 1e-9);
  double window = std::floor(rate_.count - window_cost_ + 1e-9);
  double n = std::min({pacer, window, static_cast<double>(at_most)});
  return n > 0 ? static_cast<int>(n) : 0;
}

void RateLimiter::Take(double now, double cost) {
  if (unlimited()) return;
  Expire(now);
  tat_ = std::max(tat_, now) + cost * interval_;
  sent_.emplace_back(now, cost);
  window_cost_ += cost;
}

}  // namespace outboxd
