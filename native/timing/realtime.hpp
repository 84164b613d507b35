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
#include <cstdio>
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
#include <sys/syscall.h>
#include <csignal>
#include <ctime>
#include <mutex>
#endif

namespace engine {

// The calling thread's policy and priority, to put back after a boost; slice_ns > 0: the ordinary
// policy's time slice to put back with it (see request_slice; 0: the kernel's default).
struct SchedState {
  int policy = 0;
  int priority = 0;
  int nice = 0;
  std::int64_t slice_ns = 0;
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
  errno = 0;
  const int nice = getpriority(PRIO_PROCESS, 0);  // Linux: the calling thread's
  if (errno == 0) s.nice = nice;
#endif
  return s;
}

// Time slices of ordinary threads (Linux 6.12+, EEVDF): sched_setattr's sched_runtime on a SCHED_OTHER
// thread is its requested slice, clamped by the kernel to 0.1-100 ms (default: the base slice, 0.7-3 ms
// by core count). A thread that asks for a shorter slice gets an earlier deadline, and on wake-up it
// preempts a running thread with a longer one at once. Without it the woken thread waits until the running
// one has used up its protected slice, in practice until the next scheduler tick (4 ms at HZ=250): the
// tail of an X server answering a grab on a machine whose cores are busy (bench: the server's wake-up
// waited p99 3.6 ms with two busy processes beside). The share of CPU a thread gets does not change (that
// is its weight, the nice value), only how soon it runs after waking. No privilege is needed for the
// calling process' own threads or another process of the same user; older kernels accept the call and
// ignore the value, which the read-back shows.
#if defined(__linux__)
struct LinuxSchedAttr {  // struct sched_attr (SCHED_ATTR_SIZE_VER1), not in every libc's headers
  std::uint32_t size;
  std::uint32_t sched_policy;
  std::uint64_t sched_flags;
  std::int32_t sched_nice;
  std::uint32_t sched_priority;
  std::uint64_t sched_runtime;
  std::uint64_t sched_deadline;
  std::uint64_t sched_period;
  std::uint32_t sched_util_min;
  std::uint32_t sched_util_max;
};

// errno on failure, 0 on success. tid 0: the calling thread.
inline int get_sched_attr(int tid, LinuxSchedAttr& a) {
  a = LinuxSchedAttr{};
  return ::syscall(SYS_sched_getattr, tid, &a, sizeof a, 0) == 0 ? 0 : errno;
}

inline int set_sched_attr(int tid, LinuxSchedAttr a) {
  a.size = sizeof a;
  a.sched_flags &= 0x01;  // SCHED_FLAG_RESET_ON_FORK kept; no utilisation clamps or deadline flags
  return ::syscall(SYS_sched_setattr, tid, &a, 0) == 0 ? 0 : errno;
}
#endif

struct SliceResult {
  bool granted = false;
  std::int64_t previous_ns = 0;  // the slice before (what sched_getattr said)
  std::string detail;            // "slice 0.1 ms granted" / "slice 0.1 ms refused (...)"
};

inline std::string slice_ms(std::int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g ms", static_cast<double>(ns) / 1e6);
  return buf;
}

// Ask for an ordinary-policy time slice of slice_ns for thread or process `tid` (0: the calling thread).
// Only for SCHED_OTHER/SCHED_BATCH threads (a real-time one has no slice: left alone, "not needed").
// Never throws; granted only when the kernel reads back the value asked for.
inline SliceResult request_slice(int tid, std::int64_t slice_ns) {
  SliceResult r;
  const std::string what = "slice " + slice_ms(slice_ns);
#if defined(__linux__)
  LinuxSchedAttr a;
  int err = get_sched_attr(tid, a);
  if (err != 0) {
    r.detail = what + (err == ENOSYS ? " not supported on this kernel" : " refused (" + std::string(std::strerror(err)) + ")");
    return r;
  }
  r.previous_ns = static_cast<std::int64_t>(a.sched_runtime);
  if (a.sched_policy != SCHED_OTHER && a.sched_policy != SCHED_BATCH) {
    r.detail = what + " not needed (already real-time)";
    return r;
  }
  a.sched_runtime = static_cast<std::uint64_t>(slice_ns);
  err = set_sched_attr(tid, a);
  if (err != 0) {
    r.detail = what + (err == EPERM ? " refused (owned by another user: run as that user, or with CAP_SYS_NICE)"
                                    : " refused (" + std::string(std::strerror(err)) + ")");
    return r;
  }
  LinuxSchedAttr b;
  if (get_sched_attr(tid, b) != 0 || static_cast<std::int64_t>(b.sched_runtime) != slice_ns) {
    r.detail = what + " not supported (ordinary-thread slices need Linux 6.12+)";
    return r;
  }
  r.granted = true;
  r.detail = what + " granted";
#else
  (void)tid;
  r.detail = what + " not supported on this system";
#endif
  return r;
}

// Put back `previous_ns` on `tid` if it still has the slice `ours` (nobody changed it since).
inline void restore_slice(int tid, std::int64_t ours, std::int64_t previous_ns) {
#if defined(__linux__)
  LinuxSchedAttr a;
  if (get_sched_attr(tid, a) != 0 || static_cast<std::int64_t>(a.sched_runtime) != ours) return;
  if (a.sched_policy != SCHED_OTHER && a.sched_policy != SCHED_BATCH) return;
  a.sched_runtime = static_cast<std::uint64_t>(previous_ns);
  set_sched_attr(tid, a);
#else
  (void)tid, (void)ours, (void)previous_ns;
#endif
}

// A short slice for another process (the X server) held while this object lives, put back when it goes
// (if still ours). pid <= 0: not asked ("unknown"). A process killed while holding it leaves the server
// with the short slice (it then wakes sooner, its share of CPU unchanged) until the next capture ends and
// puts back the kernel's default.
class ProcessSlice {
 public:
  ProcessSlice(int pid, std::int64_t slice_ns, const std::string& who) : pid_(pid), ns_(slice_ns) {
    if (pid <= 0) {
      detail_ = who + " slice not asked for (no local server process known for this capture source)";
      return;
    }
    const SliceResult r = request_slice(pid, slice_ns);
    granted_ = r.granted;
    // Already ours: left by a capture that was killed before it could put it back. 0 is the default.
    previous_ = r.previous_ns == slice_ns ? 0 : r.previous_ns;
    detail_ = who + " (pid " + std::to_string(pid) + ") " + r.detail;
  }
  ~ProcessSlice() {
    if (granted_) restore_slice(pid_, ns_, previous_);
  }
  ProcessSlice(const ProcessSlice&) = delete;
  ProcessSlice& operator=(const ProcessSlice&) = delete;
  bool granted() const { return granted_; }
  const std::string& detail() const { return detail_; }

 private:
  int pid_;
  std::int64_t ns_;
  std::int64_t previous_ = 0;
  bool granted_ = false;
  std::string detail_;
};

inline void restore_sched(const SchedState& s) {
#if defined(__linux__)
  if (s.slice_ns > 0 && (s.policy == SCHED_OTHER || s.policy == SCHED_BATCH)) {
    // One call for policy and slice: pthread_setschedparam back to SCHED_OTHER would reset the slice.
    LinuxSchedAttr a{};
    a.sched_policy = static_cast<std::uint32_t>(s.policy);
    a.sched_nice = s.nice;
    a.sched_runtime = static_cast<std::uint64_t>(s.slice_ns);
    if (set_sched_attr(0, a) == 0) return;
  }
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

// A scheduling point every `interval_ns` while armed, for a thread that blocks waiting for another
// process (the capture thread waiting for the X server's reply). Linux only checks whether a waiting
// ordinary thread should run instead of the running one at wake-ups and at the scheduler tick (every
// 4 ms at HZ=250). A server woken by our request may not be eligible to run at once (EEVDF: it used more
// than its share the last time it ran), so when this thread blocks, a busy process gets the core and
// keeps it until the next tick, and the server, eligible microseconds later, waits the rest of the 4 ms.
// The kick is a timer signal to this thread: it wakes (a real-time thread preempts at once), the empty
// handler returns, the wait resumes (XCB retries a poll() that a signal interrupted), and the kernel picks
// again, now the server. Costs a timer interrupt and two context switches per kick, only while armed and
// only when the reply takes longer than the interval. Linux only; elsewhere a no-op.
class WaitKick {
 public:
  explicit WaitKick(std::int64_t interval_ns) : interval_ns_(interval_ns) {
#if defined(__linux__)
    if (interval_ns <= 0) return;
    static std::once_flag installed;
    std::call_once(installed, [] {
      struct sigaction sa {};
      sa.sa_handler = [](int) {};
      sa.sa_flags = SA_RESTART;  // a write or read the kick lands in restarts; poll() returns EINTR
      sigemptyset(&sa.sa_mask);
      sigaction(signal_number(), &sa, nullptr);
    });
    sigevent sev{};
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = signal_number();
    sev._sigev_un._tid = static_cast<pid_t>(::syscall(SYS_gettid));
    ok_ = timer_create(CLOCK_MONOTONIC, &sev, &timer_) == 0;
#endif
  }
  ~WaitKick() {
#if defined(__linux__)
    if (ok_) timer_delete(timer_);
#endif
  }
  WaitKick(const WaitKick&) = delete;
  WaitKick& operator=(const WaitKick&) = delete;

  bool active() const { return ok_; }
  // Armed while in scope (disarmed on every exit, exceptions included).
  class Armed {
   public:
    explicit Armed(WaitKick& k) : k_(k) { k_.arm(); }
    ~Armed() { k_.disarm(); }
    Armed(const Armed&) = delete;
    Armed& operator=(const Armed&) = delete;

   private:
    WaitKick& k_;
  };
  void arm() {
#if defined(__linux__)
    if (!ok_) return;
    itimerspec its{};
    its.it_value.tv_nsec = its.it_interval.tv_nsec = static_cast<long>(interval_ns_);
    timer_settime(timer_, 0, &its, nullptr);
#endif
  }
  void disarm() {
#if defined(__linux__)
    if (!ok_) return;
    const itimerspec zero{};
    timer_settime(timer_, 0, &zero, nullptr);
#endif
  }
  static int signal_number() {
#if defined(__linux__)
    return SIGRTMIN + 7;
#else
    return 0;
#endif
  }

 private:
  std::int64_t interval_ns_;
  bool ok_ = false;
#if defined(__linux__)
  timer_t timer_{};
#endif
};

}  // namespace engine
