#include "timing/pacer.hpp"

#include <cerrno>
#include <string>

#include "common/clock.hpp"
#include "common/error.hpp"

#if defined(_WIN32)
#include <timeapi.h>
#else
#include <sys/prctl.h>
#include <time.h>
#endif

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#define ENGINE_CPU_RELAX() _mm_pause()
#else
#define ENGINE_CPU_RELAX() ((void)0)
#endif

namespace engine {

namespace {

#if !defined(_WIN32)
// The default 50 us timer slack lets the kernel coalesce our wake-up that much later; 1 ns asks for
// the hrtimer's precision. Per thread, so set by whichever thread waits.
void tighten_timer_slack() {
  thread_local bool done = false;
  if (!done) {
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    done = true;
  }
}

void os_sleep_until(std::int64_t t_ns) {
  tighten_timer_slack();
  timespec ts{static_cast<time_t>(t_ns / 1'000'000'000), static_cast<long>(t_ns % 1'000'000'000)};
  // A signal (e.g. SIGINT for Python's handler) interrupts the sleep; sleep again rather than spin out
  // the rest of the period. The handler runs when wait() returns, at most one period later.
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}
#endif

}  // namespace

#if defined(_WIN32)
// CREATE_WAITABLE_TIMER_HIGH_RESOLUTION (Windows 10 1803+) gives ~0.5 ms timers without changing the
// system-wide timer resolution; older systems fall back to timeBeginPeriod(1) and a plain timer.
// https://learn.microsoft.com/windows/win32/api/synchapi/nf-synchapi-createwaitabletimerexw
#ifndef CREATE_WAITABLE_TIMER_HIGH_RESOLUTION
#define CREATE_WAITABLE_TIMER_HIGH_RESOLUTION 0x00000002
#endif
namespace {
HANDLE make_timer(bool& high_res) {
  HANDLE t = CreateWaitableTimerExW(nullptr, nullptr, CREATE_WAITABLE_TIMER_HIGH_RESOLUTION, TIMER_ALL_ACCESS);
  high_res = t != nullptr;
  if (!high_res) t = CreateWaitableTimerExW(nullptr, nullptr, 0, TIMER_ALL_ACCESS);
  return t;
}

// Block until monotonic time `wake` (if it is in the future). Waitable timers take absolute times
// on the wall clock only, so the due time is relative (negative, in 100 ns units).
void os_sleep_until(HANDLE timer, std::int64_t wake) {
  const std::int64_t now = monotonic_ns();
  if (wake <= now) return;
  LARGE_INTEGER due;
  due.QuadPart = -static_cast<LONGLONG>((wake - now) / 100);
  if (timer != nullptr && due.QuadPart < 0 && SetWaitableTimer(timer, &due, 0, nullptr, nullptr, FALSE)) {
    WaitForSingleObject(timer, INFINITE);
  } else if (wake - now >= 1'000'000) {
    Sleep(static_cast<DWORD>((wake - now) / 1'000'000));  // no timer at all: the caller spins the rest
  }
}
}  // namespace

Pacer::Pacer(std::int64_t period_ns, std::int64_t spin_ns, std::int64_t start_ns)
    : period_(period_ns), spin_(spin_ns), start_(start_ns > 0 ? start_ns : monotonic_ns()) {
  if (period_ns <= 0) throw InvalidArgument("pacer period must be positive, got " + std::to_string(period_ns) + " ns");
  if (spin_ns < 0) throw InvalidArgument("pacer spin must be >= 0");
  timer_ = make_timer(high_res_);
  if (!high_res_) timeBeginPeriod(1);
}
Pacer::~Pacer() {
  if (timer_) CloseHandle(static_cast<HANDLE>(timer_));
  if (!high_res_) timeEndPeriod(1);
}
void Pacer::sleep_until(std::int64_t deadline_ns) {
  os_sleep_until(static_cast<HANDLE>(timer_), deadline_ns - spin_);
  while (monotonic_ns() < deadline_ns) ENGINE_CPU_RELAX();
}
// The same strategy as the Pacer with a timer of its own: plain Sleep() would round up to the
// 15.6 ms system tick on Windows. Creating a timer costs a few microseconds, far below any sleep
// worth taking.
void sleep_until_ns(std::int64_t deadline_ns, std::int64_t spin_ns) {
  const std::int64_t wake = deadline_ns - spin_ns;
  if (wake > monotonic_ns()) {
    bool high_res = false;
    HANDLE timer = make_timer(high_res);
    if (!high_res) timeBeginPeriod(1);
    os_sleep_until(timer, wake);
    if (!high_res) timeEndPeriod(1);
    if (timer) CloseHandle(timer);
  }
  while (monotonic_ns() < deadline_ns) ENGINE_CPU_RELAX();
}
#else
Pacer::Pacer(std::int64_t period_ns, std::int64_t spin_ns, std::int64_t start_ns)
    : period_(period_ns), spin_(spin_ns), start_(start_ns > 0 ? start_ns : monotonic_ns()) {
  if (period_ns <= 0) throw InvalidArgument("pacer period must be positive, got " + std::to_string(period_ns) + " ns");
  if (spin_ns < 0) throw InvalidArgument("pacer spin must be >= 0");
}
Pacer::~Pacer() = default;
void Pacer::sleep_until(std::int64_t deadline_ns) { sleep_until_ns(deadline_ns, spin_); }
void sleep_until_ns(std::int64_t deadline_ns, std::int64_t spin_ns) {
  if (deadline_ns - spin_ns > monotonic_ns()) os_sleep_until(deadline_ns - spin_ns);
  while (monotonic_ns() < deadline_ns) ENGINE_CPU_RELAX();
}
#endif

Tick Pacer::wait() {
  std::int64_t deadline = start_ + next_index_ * period_;
  std::int64_t skipped = 0;
  const std::int64_t now = monotonic_ns();
  if (now - deadline >= period_) {
    // Over a period late: drop every tick whose successor is already due.
    skipped = (now - deadline) / period_;
    next_index_ += skipped;
    deadline += skipped * period_;
    late_.fetch_add(static_cast<std::uint64_t>(skipped), std::memory_order_relaxed);
  }
  sleep_until(deadline);
  const std::int64_t woke = monotonic_ns();
  Tick t{next_index_, deadline, woke, woke - deadline, skipped};
  ++next_index_;
  ticks_.fetch_add(1, std::memory_order_relaxed);
  return t;
}

void Pacer::restart(std::int64_t start_ns) {
  // Tick indices keep counting; the next one is due at start_ns.
  start_ = (start_ns > 0 ? start_ns : monotonic_ns()) - next_index_ * period_;
}

}  // namespace engine
