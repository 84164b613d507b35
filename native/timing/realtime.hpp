// Real-time scheduling, CPU affinity and memory locking for the latency-critical threads (issue #19).
//
// On a loaded machine the tail of every wake-up (the pacer's timer, the play loop's futex) is the time
// the kernel takes to give the woken thread a core back from whatever ran meanwhile. A SCHED_FIFO thread
// preempts every ordinary (SCHED_OTHER) thread at once, so that wait disappears. Linux grants it to a
// process with CAP_SYS_NICE (root) or up to RLIMIT_RTPRIO (`ulimit -r`); when it is refused the thread
// keeps its ordinary policy and the caller gets a line saying so, never an error.
// Header-only, and every function is a no-op that reports "not supported" off Linux.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#if defined(__linux__)
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#endif

namespace engine {

// The calling thread's policy and priority, to put back after a boost.
struct SchedState {
  int policy = 0;
  int priority = 0;
};

struct SchedResult {
  bool granted = false;
  int priority = 0;    // the SCHED_FIFO priority actually set (may be clamped to RLIMIT_RTPRIO)
  std::string detail;  // "SCHED_FIFO 20 granted" / "refused (...)"
};

inline SchedState current_sched() {
  SchedState s;
#if defined(__linux__)
  sched_param p{};
  if (pthread_getschedparam(pthread_self(), &s.policy, &p) == 0) s.priority = p.sched_priority;
#endif
  return s;
}

inline void restore_sched(const SchedState& s) {
#if defined(__linux__)
  sched_param p{};
  p.sched_priority = s.priority;
  pthread_setschedparam(pthread_self(), s.policy, &p);
#else
  (void)s;
#endif
}

// Ask for SCHED_FIFO at `priority` (1..99) for the calling thread. Without CAP_SYS_NICE the kernel allows
// up to RLIMIT_RTPRIO, so a lower soft limit is tried next. Never throws.
inline SchedResult request_realtime(int priority) {
  SchedResult r;
#if defined(__linux__)
  if (priority <= 0) {
    r.detail = "off";
    return r;
  }
  const int max = sched_get_priority_max(SCHED_FIFO);
  if (priority > max) priority = max;
  sched_param p{};
  p.sched_priority = priority;
  int err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &p);
  if (err == EPERM) {
    rlimit lim{};
    if (getrlimit(RLIMIT_RTPRIO, &lim) == 0 && lim.rlim_cur > 0 && static_cast<int>(lim.rlim_cur) < priority) {
      p.sched_priority = static_cast<int>(lim.rlim_cur);
      err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &p);
    }
  }
  if (err == 0) {
    r.granted = true;
    r.priority = p.sched_priority;
    r.detail = "SCHED_FIFO " + std::to_string(p.sched_priority) + " granted";
  } else if (err == EPERM) {
    r.detail = "SCHED_FIFO refused (no CAP_SYS_NICE and RLIMIT_RTPRIO is 0: `ulimit -r` to allow it)";
  } else {
    r.detail = std::string("SCHED_FIFO refused (") + std::strerror(err) + ")";
  }
#else
  (void)priority;
  r.detail = "SCHED_FIFO not supported on this system";
#endif
  return r;
}

// Pin the calling thread to one CPU (< 0: leave it). False if the CPU is not available to the process.
inline bool pin_thread(int cpu) {
#if defined(__linux__)
  if (cpu < 0) return true;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
#else
  return cpu < 0;
#endif
}

// Keep [p, p + n) resident (no page fault on the latency path). False when RLIMIT_MEMLOCK refuses.
inline bool lock_memory(const void* p, std::size_t n) {
#if defined(__linux__)
  return mlock(p, n) == 0;
#else
  (void)p;
  (void)n;
  return false;
#endif
}

inline void unlock_memory(const void* p, std::size_t n) {
#if defined(__linux__)
  munlock(p, n);
#else
  (void)p;
  (void)n;
#endif
}

// A PM QoS request on CPU wake-up latency, held while this object lives (Linux: /dev/cpu_dma_latency,
// kept open with the limit written to it; the kernel drops the request when it is closed, also when
// the process dies). With a limit of 0 us, idle CPUs poll instead of entering idle states that take
// time to leave. What it buys, measured on a 2-vCPU KVM guest (cpuidle haltpoll): a halted vCPU costs
// tens of microseconds to wake, and capture wakes two of them per frame (the X server's for the grab,
// then the capture thread's for the reply), then the play loop's. The price is power: idle CPUs spin
// while it is held (the whole machine's, not only this process'). Granted where the device is writable
// (root, or a udev rule giving a group write access); refused is never an error.
class WakeLatencyRequest {
 public:
  // max_us < 0: nothing asked for ("off").
  explicit WakeLatencyRequest(int max_us) {
    if (max_us < 0) {
      detail_ = "off";
      return;
    }
#if defined(__linux__)
    fd_ = ::open("/dev/cpu_dma_latency", O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) {
      const int err = errno;
      detail_ = "wake-up latency " + std::to_string(max_us) + " us (PM QoS) " +
                (err == EACCES || err == EPERM
                     ? std::string("refused (/dev/cpu_dma_latency is not writable: root, or a udev rule giving a group "
                                   "write access)")
                     : std::string("not available (/dev/cpu_dma_latency: ") + std::strerror(err) + ")");
      return;
    }
    const std::int32_t value = max_us;
    if (::write(fd_, &value, sizeof value) != static_cast<ssize_t>(sizeof value)) {
      detail_ = std::string("wake-up latency (PM QoS) refused (") + std::strerror(errno) + ")";
      ::close(fd_);
      fd_ = -1;
      return;
    }
    detail_ = "wake-up latency " + std::to_string(max_us) + " us (PM QoS) granted";
#else
    detail_ = "wake-up latency (PM QoS) not supported on this system";
#endif
  }
  ~WakeLatencyRequest() { release(); }
  WakeLatencyRequest(const WakeLatencyRequest&) = delete;
  WakeLatencyRequest& operator=(const WakeLatencyRequest&) = delete;

  // Drop the request now (idempotent).
  void release() {
#if defined(__linux__)
    if (fd_ >= 0) ::close(fd_);
#endif
    fd_ = -1;
  }
  bool granted() const { return fd_ >= 0; }
  const std::string& detail() const { return detail_; }

 private:
  int fd_ = -1;
  std::string detail_;
};

}  // namespace engine
