// Lets a consumer sleep until a producer publishes, without the producer ever taking a lock or
// making a syscall when nobody waits. Linux: futex on a 32-bit epoch. Windows: WaitOnAddress.
//
// Correctness: the producer bumps the epoch then reads the waiter count; a consumer bumps the waiter
// count then sleeps only while the epoch still equals the value it saw. Both sides are seq_cst, so
// either the producer sees the waiter and wakes it, or the kernel sees the new epoch and returns.
#pragma once

#include <atomic>
#include <cstdint>

#if defined(_WIN32)
#include "common/clock.hpp"  // windows.h
#else
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

namespace engine {

class Notifier {
 public:
  // Any thread.
  std::uint32_t epoch() const { return epoch_.load(std::memory_order_acquire); }

  // Producer: after publishing.
  void notify() {
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    if (waiters_.load(std::memory_order_seq_cst) != 0) wake_all();
  }

  // Consumer: sleep until epoch() != seen or timeout_ns passes (< 0: forever). Spurious wake-ups are
  // allowed: callers re-check their condition.
  void wait(std::uint32_t seen, std::int64_t timeout_ns) {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    if (epoch_.load(std::memory_order_seq_cst) == seen) sleep_while(seen, timeout_ns);
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
  }

 private:
#if defined(_WIN32)
  void wake_all() { WakeByAddressAll(&epoch_); }
  void sleep_while(std::uint32_t seen, std::int64_t timeout_ns) {
    // Milliseconds, rounded up, and below INFINITE so a huge finite timeout stays finite.
    const std::int64_t ms = timeout_ns / 1'000'000 + (timeout_ns % 1'000'000 != 0 ? 1 : 0);
    const DWORD wait_ms = timeout_ns < 0 ? INFINITE : static_cast<DWORD>(ms < INFINITE - 1 ? ms : INFINITE - 1);
    // https://learn.microsoft.com/windows/win32/api/synchapi/nf-synchapi-waitonaddress
    WaitOnAddress(&epoch_, &seen, sizeof(seen), wait_ms);
  }
#else
  void wake_all() {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&epoch_), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr,
            nullptr, 0);
  }
  void sleep_while(std::uint32_t seen, std::int64_t timeout_ns) {
    timespec ts{};
    timespec* tp = nullptr;
    if (timeout_ns >= 0) {
      ts.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
      tp = &ts;
    }
    // FUTEX_WAIT takes a relative timeout and returns at once if the word no longer equals `seen`.
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&epoch_), FUTEX_WAIT_PRIVATE, seen, tp, nullptr, 0);
  }
#endif
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t), "futex word must be 32 bits");
  std::atomic<std::uint32_t> epoch_{0};
  std::atomic<std::uint32_t> waiters_{0};
};

}  // namespace engine
