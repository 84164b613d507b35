#include "capture/capture_loop.hpp"

#include <algorithm>
#include <chrono>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "timing/realtime.hpp"

namespace engine {

namespace {
void store_max(std::atomic<std::int64_t>& m, std::int64_t v) {
  // Only the capture thread writes, so a plain compare-and-store is enough.
  if (v > m.load(std::memory_order_relaxed)) m.store(v, std::memory_order_relaxed);
}
}  // namespace

CaptureLoop::CaptureLoop(std::shared_ptr<Source> source, std::shared_ptr<FrameSink> sink, int out_w, int out_h,
                         Color color, std::int64_t period_ns, KernelPath path, std::int64_t spin_ns)
    : source_(std::move(source)),
      sink_(std::move(sink)),
      conv_(source_->width(), source_->height(), out_w, out_h, color, path),
      period_(period_ns),
      spin_(spin_ns),
      lateness_(new std::atomic<std::int64_t>[kLatenessLog]) {
  if (period_ns <= 0) throw InvalidArgument("capture period must be positive");
  if (sink_->frame_bytes() != conv_.frame_bytes()) {
    throw InvalidArgument("sink frame size " + std::to_string(sink_->frame_bytes()) +
                          " bytes does not match the output frame " + std::to_string(conv_.frame_bytes()));
  }
}

CaptureLoop::~CaptureLoop() { stop(); }

void CaptureLoop::start() {
  if (thread_.joinable()) throw InvalidArgument("capture loop already started");
  stop_.store(false);
  running_.store(true, std::memory_order_release);
  thread_ = std::thread([this] { run(); });
}

void CaptureLoop::stop() {
  stop_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
  running_.store(false, std::memory_order_release);
}

void CaptureLoop::pause() { paused_.store(true, std::memory_order_release); }

void CaptureLoop::resume() {
  resumed_.store(true, std::memory_order_release);
  paused_.store(false, std::memory_order_release);
}

void CaptureLoop::fail(const std::string& what, bool lost) {
  {
    std::lock_guard<std::mutex> lock(error_mutex_);
    error_ = what;
  }
  window_lost_.store(lost, std::memory_order_release);
}

void CaptureLoop::run() {
  // Real-time scheduling asked for (rt_priority_ > 0):
  // - SCHED_FIFO for the pacer's wait, so the tick lands on its deadline however busy the machine is;
  // - for the grab, ordinary scheduling by default. A real-time thread blocked on the X server's reply
  //   leaves its core to whatever ordinary thread is eligible, and the server, woken by the request but
  //   not yet eligible (EEVDF), then waits for the next scheduler tick: grab p50 1.8 ms instead of 0.17
  //   ms under load. With grab_realtime (play) the grab stays real-time and its wait is kicked (WaitKick):
  //   loaded play capture->keys p99, see the README;
  // - the shortest ordinary time slice (0.1 ms) for this thread's ordinary phase and for the X server while
  //   capture runs (see request_slice): the server's wake-up on a busy core otherwise waits for the
  //   running thread's slice;
  // - no idle-state latency on wake-ups (WakeLatencyRequest): on an idle 2-vCPU VM, 60 fps recording took
  //   12% less CPU per frame with it and its tick lateness max went from 0.08-0.27 ms to 0.01-0.05 ms.
  // Everything is put back when capture stops.
  const bool boost = rt_priority_ > 0;
  SchedState ordinary = current_sched();
  const SliceResult own = boost ? request_slice(0, kGrabSliceNs) : SliceResult{};
  if (own.granted) ordinary.slice_ns = kGrabSliceNs;
  SchedResult rt = request_realtime(rt_priority_);
  const bool grab_rt = rt.granted && rt_grab_;
  // The kick is for a grab that waits on a local server process; a source without one (a Python backend
  // calling mss, DXGI) would only be interrupted for nothing.
  const int server_pid = boost ? source_->server_pid() : -1;
  WaitKick kick(grab_rt && server_pid > 0 ? kGrabKickNs : 0);
  WakeLatencyRequest wake(boost ? 0 : -1);
  ProcessSlice server(server_pid, kGrabSliceNs, source_->server_name());
  {
    const bool pinned = rt_cpu_ >= 0 && pin_thread(rt_cpu_);
    std::string detail = rt.detail;
    if (grab_rt) {
      detail += " (for its tick and grab";
      if (kick.active()) detail += ", its wait for the server kicked every " + slice_ms(kGrabKickNs);
      detail += ")";
    } else if (rt.granted) {
      detail += " (for its tick)";
    }
    if (boost && !grab_rt) detail += ", " + own.detail + (rt.granted ? " for its grab" : "");
    if (pinned) detail += ", pinned to CPU " + std::to_string(rt_cpu_);
    if (boost) detail += ", " + server.detail() + ", " + wake.detail();
    std::lock_guard<std::mutex> lock(error_mutex_);
    scheduling_ = detail;
  }
  Pacer pacer(period_, spin_);
  try {
    while (!stop_.load(std::memory_order_acquire)) {
      if (paused_.load(std::memory_order_acquire)) {
        sleep_until_ns(monotonic_ns() + std::min<std::int64_t>(period_, 5'000'000), 0);
        continue;
      }
      if (resumed_.exchange(false, std::memory_order_acq_rel)) pacer.restart();
      if (rt.granted && !grab_rt) request_realtime(rt.priority);
      const Tick tick = pacer.wait();
      if (rt.granted && !grab_rt) restore_sched(ordinary);
      if (stop_.load(std::memory_order_acquire)) break;
      ticks_.fetch_add(1, std::memory_order_relaxed);
      if (tick.skipped) late_.fetch_add(static_cast<std::uint64_t>(tick.skipped), std::memory_order_relaxed);
      late_total_.fetch_add(tick.lateness_ns, std::memory_order_relaxed);
      store_max(late_max_, tick.lateness_ns);
      const std::uint64_t ln = lateness_n_.load(std::memory_order_relaxed);
      lateness_[ln % kLatenessLog].store(tick.lateness_ns, std::memory_order_relaxed);
      lateness_n_.store(ln + 1, std::memory_order_release);

      std::uint8_t* slot = sink_->acquire();
      if (slot == nullptr) {
        sink_->drop();
        dropped_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      const std::int64_t t0 = monotonic_ns();
      const BgraView src = [&] {
        const WaitKick::Armed armed(kick);
        return source_->grab();
      }();
      const std::int64_t t1 = monotonic_ns();
      sink_->note_grabbed(t1);
      conv_.run(src, PixelsOut{slot, conv_.dst_width(), conv_.dst_height(),
                               static_cast<std::ptrdiff_t>(conv_.dst_width()) * channels(conv_.color())});
      const std::int64_t t2 = monotonic_ns();
      sink_->publish(t0, static_cast<std::uint64_t>(tick.index));
      frames_.fetch_add(1, std::memory_order_relaxed);
      grab_total_.fetch_add(t1 - t0, std::memory_order_relaxed);
      store_max(grab_max_, t1 - t0);
      conv_total_.fetch_add(t2 - t1, std::memory_order_relaxed);
      store_max(conv_max_, t2 - t1);
    }
  } catch (const WindowLost& e) {
    fail(e.what(), true);
  } catch (const std::exception& e) {
    fail(e.what(), false);
  }
  running_.store(false, std::memory_order_release);
}

CaptureStats CaptureLoop::stats() const {
  CaptureStats s;
  s.ticks = ticks_.load(std::memory_order_relaxed);
  s.frames = frames_.load(std::memory_order_relaxed);
  s.late_ticks = late_.load(std::memory_order_relaxed);
  s.dropped = dropped_.load(std::memory_order_relaxed);
  s.grab_ns_total = grab_total_.load(std::memory_order_relaxed);
  s.grab_ns_max = grab_max_.load(std::memory_order_relaxed);
  s.convert_ns_total = conv_total_.load(std::memory_order_relaxed);
  s.convert_ns_max = conv_max_.load(std::memory_order_relaxed);
  s.lateness_ns_total = late_total_.load(std::memory_order_relaxed);
  s.lateness_ns_max = late_max_.load(std::memory_order_relaxed);
  return s;
}

std::string CaptureLoop::scheduling() const {
  std::lock_guard<std::mutex> lock(error_mutex_);
  return scheduling_;
}

std::string CaptureLoop::error() const {
  std::lock_guard<std::mutex> lock(error_mutex_);
  return error_;
}

std::vector<std::int64_t> CaptureLoop::lateness_log() const {
  // Entries may be overwritten while we copy; the log is diagnostic, not exact.
  const std::uint64_t n = lateness_n_.load(std::memory_order_acquire);
  const std::uint64_t k = std::min<std::uint64_t>(n, kLatenessLog);
  std::vector<std::int64_t> out(k);
  for (std::uint64_t i = 0; i < k; ++i) out[i] = lateness_[(n - k + i) % kLatenessLog].load(std::memory_order_relaxed);
  return out;
}

}  // namespace engine
