// Backoff: exponential with full jitter.
//   delay(n) = U[0,1) * min(cap, base * 2^n)      (n = attempts so far, from 0)
// With a fixed random source the sequence is fixed, which tests pin down.
// Thread rules: pure function.
#ifndef OUTBOXD_DAEMON_BACKOFF_H_
#define OUTBOXD_DAEMON_BACKOFF_H_

#include "daemon/clock.h"

namespace outboxd {

struct BackoffPolicy {
  double base_s = 1;
  double cap_s = 300;
  // The ceiling for attempt n before jitter: min(cap, base * 2^n).
  double Ceiling(int attempts) const;
  // A jittered delay for attempt n.
  double Delay(int attempts, Random* random) const;
};

}  // namespace outboxd

#endif  // OUTBOXD_DAEMON_BACKOFF_H_
