// Time as the runtime sees it, behind a seam (STYLE.md: clock, transport,
// link rate and allocator are seams): production code asks a Clock, tests
// hand it a ManualClock and decide when time passes. Units: ms, monotonic,
// from an arbitrary origin.
#pragma once

#include <atomic>
#include <chrono>
#include <thread>

namespace ionn {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual double NowMs() const = 0;
  // Returns once NowMs() has advanced by at least `ms` (no-op for ms <= 0).
  virtual void SleepMs(double ms) = 0;

  // The machine's steady clock and real sleeps. Shared, thread-safe.
  static Clock& System();
};

class SystemClock final : public Clock {
 public:
  double NowMs() const override {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  void SleepMs(double ms) override {
    if (ms > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
  }
};

inline Clock& Clock::System() {
  static SystemClock clock;
  return clock;
}

// A clock that moves only when told: SleepMs advances it at once, as does
// Advance. Thread-safe; meant for tests and deterministic replays.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(double start_ms = 0) : now_ms_(start_ms) {}
  double NowMs() const override { return now_ms_.load(); }
  void SleepMs(double ms) override {
    if (ms > 0) Advance(ms);
  }
  void Advance(double ms) {
    double now = now_ms_.load();
    while (!now_ms_.compare_exchange_weak(now, now + ms)) {
    }
  }

 private:
  std::atomic<double> now_ms_;
};

}  // namespace ionn
