// Clock and Random: the time and randomness seams. Only main() builds the
// real ones; tests pass fakes that move only when told.
// Thread rules: the real clock is thread-safe; fakes are for one thread.
#ifndef OUTBOXD_DAEMON_CLOCK_H_
#define OUTBOXD_DAEMON_CLOCK_H_

#include <cstdint>
#include <memory>

namespace outboxd {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall time, Unix epoch seconds: what the store and providers see.
  virtual double Now() const = 0;
  // Monotonic seconds from an arbitrary origin: for timers and buckets.
  virtual double Monotonic() const = 0;
};

class Random {
 public:
  virtual ~Random() = default;
  // Uniform in [0, 1).
  virtual double Uniform() = 0;
};

std::unique_ptr<Clock> NewSystemClock();
// A fast generator seeded from the OS once.
std::unique_ptr<Random> NewSystemRandom();

// A clock that moves only when told; wall = monotonic + offset.
class FakeClock : public Clock {
 public:
  explicit FakeClock(double wall_start = 1.7e9) : offset_(wall_start) {}
  double Now() const override { return mono_ + offset_; }
  double Monotonic() const override { return mono_; }
  void Advance(double seconds) { mono_ += seconds; }
  void AdvanceTo(double monotonic) {
    if (monotonic > mono_) mono_ = monotonic;
  }

 private:
  double mono_ = 1000;
  double offset_;
};

}  // namespace outboxd

#endif  // OUTBOXD_DAEMON_CLOCK_H_
