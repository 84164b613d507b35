// The native capture thread: per pacer tick, reserve a slot in the sink, grab, convert+resize into
// the slot, stamp (monotonic ns at grab start) and publish. Never touches Python.
//
// Thread contract: start()/stop()/pause()/resume() from one controlling thread; stats() and error()
// from any thread. The Source, converter and sink are used only by the capture thread while it runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capture/source.hpp"
#include "kernels/convert_resize.hpp"
#include "ring/frame_sink.hpp"
#include "timing/pacer.hpp"

namespace engine {

struct CaptureStats {
  std::uint64_t ticks = 0;       // pacer ticks served
  std::uint64_t frames = 0;      // frames published
  std::uint64_t late_ticks = 0;  // ticks skipped because the thread was over a period late
  std::uint64_t dropped = 0;     // frames lost because the sink was full
  std::int64_t grab_ns_total = 0, grab_ns_max = 0;
  std::int64_t convert_ns_total = 0, convert_ns_max = 0;
  std::int64_t lateness_ns_total = 0, lateness_ns_max = 0;
};

class CaptureLoop {
 public:
  // The ordinary time slice asked for the grab (this thread and the X server) with real-time scheduling:
  // the kernel's shortest.
  static constexpr std::int64_t kGrabSliceNs = 100'000;
  // With grab_realtime: how often the wait for the X server's reply is kicked (see WaitKick). Longer than
  // an unloaded grab (0.1-0.15 ms at 800x600 here), so a grab that is not kept waiting is not kicked.
  static constexpr std::int64_t kGrabKickNs = 150'000;

  CaptureLoop(std::shared_ptr<Source> source, std::shared_ptr<FrameSink> sink, int out_w, int out_h, Color color,
              std::int64_t period_ns, KernelPath path = KernelPath::Auto,
              std::int64_t spin_ns = Pacer::kDefaultSpinNs);
  ~CaptureLoop();
  CaptureLoop(const CaptureLoop&) = delete;
  CaptureLoop& operator=(const CaptureLoop&) = delete;

  // Before start(): run the thread under SCHED_FIFO at `priority` (0: ordinary scheduling) and pinned to
  // `cpu` (< 0: anywhere). Asked for when the thread starts; refusal is not an error (scheduling() says).
  // By default only the tick is waited for under SCHED_FIFO and the grab runs at ordinary priority (a
  // recording's CPU per frame is what counts). grab_realtime: the grab too, with its wait for the X server
  // kicked every kGrabKickNs (WaitKick), for a frame whose latency counts (play).
  void set_realtime(int priority, int cpu = -1, bool grab_realtime = false) {
    rt_priority_ = priority;
    rt_cpu_ = cpu;
    rt_grab_ = grab_realtime;
  }
  // What the thread got: "SCHED_FIFO 20 granted", "SCHED_FIFO refused (...)", "off"; "" before it ran.
  std::string scheduling() const;

  void start();
  // Joins the thread; at most one period plus one grab later. Idempotent.
  void stop();
  // While paused the thread idles; resume() restarts the schedule so the pause is not "late".
  void pause();
  void resume();

  bool running() const { return running_.load(std::memory_order_acquire); }
  bool paused() const { return paused_.load(std::memory_order_acquire); }
  CaptureStats stats() const;
  // Non-empty when the thread stopped on an error (e.g. the window disappeared).
  std::string error() const;
  bool window_lost() const { return window_lost_.load(std::memory_order_acquire); }
  // Lateness of the last ticks (ns, newest last), up to the log capacity.
  std::vector<std::int64_t> lateness_log() const;
  std::int64_t period_ns() const { return period_; }
  std::size_t frame_bytes() const { return conv_.frame_bytes(); }

 private:
  void run();
  void fail(const std::string& what, bool lost);

  static constexpr std::size_t kLatenessLog = 1 << 16;

  std::shared_ptr<Source> source_;
  std::shared_ptr<FrameSink> sink_;
  ConvertResize conv_;
  const std::int64_t period_, spin_;
  std::thread thread_;
  std::atomic<bool> running_{false}, stop_{false}, paused_{false}, resumed_{false}, window_lost_{false};

  std::atomic<std::uint64_t> ticks_{0}, frames_{0}, late_{0}, dropped_{0};
  std::atomic<std::int64_t> grab_total_{0}, grab_max_{0}, conv_total_{0}, conv_max_{0}, late_total_{0},
      late_max_{0};
  // Ring of kLatenessLog entries written by the capture thread, read (approximately) by others.
  std::unique_ptr<std::atomic<std::int64_t>[]> lateness_;
  std::atomic<std::uint64_t> lateness_n_{0};

  int rt_priority_ = 0, rt_cpu_ = -1;
  bool rt_grab_ = false;

  mutable std::mutex error_mutex_;
  std::string error_;       // Protected by error_mutex_.
  std::string scheduling_;  // Protected by error_mutex_.
};

}  // namespace engine
