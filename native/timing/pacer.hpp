// Fixed-rate pacing on the monotonic clock (DXcam's timer; rtgym's elastic steps).
//
// - Absolute deadlines: tick i is due at start + i * period, so errors never accumulate (no drift).
// - Sleep until shortly before the deadline (Linux: clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)
//   with the thread's timer slack at 1 ns; Windows: a high-resolution waitable timer), then spin the
//   last `spin_ns` so the wake-up lands on the deadline.
// - A tick more than a period late is dropped and counted, never caught up in a burst: the next tick
//   is the latest deadline not in the future.
// Thread contract: one thread calls wait(); the counters may be read from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace engine {

struct Tick {
  std::int64_t index;        // deadline index since start (skipped ticks included)
  std::int64_t deadline_ns;  // when this tick was due
  std::int64_t now_ns;       // when wait() returned
  std::int64_t lateness_ns;  // now_ns - deadline_ns (>= 0)
  std::int64_t skipped;      // ticks dropped just before this one because we were over a period late
};

class Pacer {
 public:
  // About the typical clock_nanosleep overshoot with 1 ns timer slack. A longer spin buys little: on a
  // busy machine the spinning thread gets preempted, which makes the tail worse, and it costs CPU on
  // every tick (bench/test_pacing.py measures both).
  static constexpr std::int64_t kDefaultSpinNs = 60'000;

  // start_ns <= 0 means "now": the first tick is due immediately.
  explicit Pacer(std::int64_t period_ns, std::int64_t spin_ns = kDefaultSpinNs, std::int64_t start_ns = 0);

  // Waiting thread only.
  Tick wait();
  // Waiting thread only: shift the schedule so the next tick is due at start_ns (after a pause, so
  // the pause is not counted as late ticks). Indices keep counting.
  void restart(std::int64_t start_ns = 0);

  std::int64_t period_ns() const { return period_; }
  std::int64_t spin_ns() const { return spin_; }
  std::int64_t start_ns() const { return start_; }
  std::uint64_t ticks() const { return ticks_.load(std::memory_order_relaxed); }
  std::uint64_t late_ticks() const { return late_.load(std::memory_order_relaxed); }

 private:
  void sleep_until(std::int64_t deadline_ns);

  std::int64_t period_, spin_, start_;
  std::int64_t next_index_ = 0;
  std::atomic<std::uint64_t> ticks_{0};
  std::atomic<std::uint64_t> late_{0};
#if defined(_WIN32)
  void* timer_ = nullptr;  // HANDLE of the waitable timer
  bool high_res_ = false;
#endif

 public:
  Pacer(const Pacer&) = delete;
  Pacer& operator=(const Pacer&) = delete;
  ~Pacer();
};

// Sleep until an absolute monotonic deadline with the same sleep-then-spin strategy.
void sleep_until_ns(std::int64_t deadline_ns, std::int64_t spin_ns = Pacer::kDefaultSpinNs);

}  // namespace engine
