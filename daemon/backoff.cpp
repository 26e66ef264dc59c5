#include "daemon/backoff.h"

#include <algorithm>
#include <cmath>

namespace outboxd {

double BackoffPolicy::Ceiling(int attempts) const {
  if (attempts < 0) attempts = 0;
  // 2^n overflows nothing below 1024; past 60 the cap has long won.
  double ceiling = base_s * std::ldexp(1.0, std::min(attempts, 60));
  return std::min(cap_s, ceiling);
}

double BackoffPolicy::Delay(int attempts, Random* random) const {
  return random->Uniform() * Ceiling(attempts);
}

}  // namespace outboxd
