#include "daemon/clock.h"

#include <chrono>
#include <random>

namespace outboxd {
namespace {

class SystemClock : public Clock {
 public:
  double Now() const override {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  double Monotonic() const override {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

class SystemRandom : public Random {
 public:
  SystemRandom() : engine_(std::random_device{}()) {}
  double Uniform() override { return dist_(engine_); }

 private:
  std::mt19937_64 engine_;
  std::uniform_real_distribution<double> dist_{0.0, 1.0};
};

}  // namespace

std::unique_ptr<Clock> NewSystemClock() { return std::make_unique<SystemClock>(); }
std::unique_ptr<Random> NewSystemRandom() { return std::make_unique<SystemRandom>(); }

}  // namespace outboxd
