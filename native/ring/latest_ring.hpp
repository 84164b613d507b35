// The play loop's window: the newest `window` frames, always readable as one contiguous array
// (oldest first), while the capture thread keeps writing.
//
// Layout ("mirrored storage"): frame j lives at slot j % C (C = window + slack) and, when
// j % C < window - 1, also at slot j % C + C. So the window ending at frame e starts at slot
// (e - window + 1) % C and runs contiguously for `window` slots in a buffer of C + window - 1 slots.
//
// Torn reads: reads never block the producer. The producer announces each frame before writing it
// (begun_, then a release fence: Boehm's seqlock writer); a reader copies, then issues an acquire
// fence and re-reads begun_. The window ending at e is intact iff frame e - window + 1 + C (the first
// one to overwrite its slots) has not begun. `slack` frames of headroom make retries rare.
// The copy races with writes to other slots by design; only the validation decides what is used.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include "common/clock.hpp"
#include "common/config.hpp"
#include "common/error.hpp"
#include "common/notifier.hpp"
#include "ring/frame_sink.hpp"
#include "timing/realtime.hpp"

namespace engine {

class LatestRing : public FrameSink {
 public:
  LatestRing(std::size_t window, std::size_t frame_bytes, std::size_t slack = 4)
      : window_(window), cap_(window + slack), frame_bytes_(frame_bytes) {
    if (window < 1 || frame_bytes < 1 || slack < 1) {
      throw InvalidArgument("latest ring needs window >= 1, frame_bytes >= 1 and slack >= 1");
    }
    data_.reset(static_cast<std::uint8_t*>(
        ::operator new[]((cap_ + window_ - 1) * frame_bytes_, std::align_val_t{kFrameAlign})));
    t_ns_ = std::make_unique<std::int64_t[]>(cap_);
    t_pub_ = std::make_unique<std::int64_t[]>(cap_);
    t_grab_ = std::make_unique<std::int64_t[]>(cap_);
    tick_ = std::make_unique<std::uint64_t[]>(cap_);
  }
  ~LatestRing() override {
    if (locked_) unlock_memory(data_.get(), storage_bytes());
  }

  // Keep the frame storage resident (mlock): no page fault when the capture thread writes a slot or the
  // play loop reads it. False when RLIMIT_MEMLOCK refuses (then the ring works as before). Play does not
  // call it: on the loaded bench it changed nothing (a ring touched every frame stays resident anyway);
  // it is for a large ring on a machine that swaps.
  bool lock() {
    if (!locked_) locked_ = lock_memory(data_.get(), storage_bytes());
    return locked_;
  }
  bool locked() const { return locked_; }

  // Producer only. Never full: the oldest frame is overwritten.
  std::uint8_t* acquire() override {
    const std::uint64_t j = published_.load(std::memory_order_relaxed);
    begun_.store(j + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    return slot(j % cap_);
  }

  void note_grabbed(std::int64_t t_ns) override {
    t_grab_[published_.load(std::memory_order_relaxed) % cap_] = t_ns;
  }

  // Producer only: mirror the low slots, stamp, publish, wake waiters.
  void publish(std::int64_t t_ns, std::uint64_t tick) override {
    const std::uint64_t j = published_.load(std::memory_order_relaxed);
    const std::size_t p = static_cast<std::size_t>(j % cap_);
    if (p + 1 < window_) std::memcpy(slot(p + cap_), slot(p), frame_bytes_);
    t_ns_[p] = t_ns;
    tick_[p] = tick;
    t_pub_[p] = monotonic_ns();  // the latency breakdown's "published" stage
    published_.store(j + 1, std::memory_order_release);
    notifier_.notify();
  }

  void drop() override {}  // never full

  // Any thread: frames published so far; the newest is published() - 1.
  std::uint64_t published() const { return published_.load(std::memory_order_acquire); }

  // Any thread: sleep until published() > after or timeout_ns passes (< 0: forever). Returns
  // published().
  std::uint64_t wait_newer(std::uint64_t after, std::int64_t timeout_ns) {
    const std::int64_t deadline = timeout_ns < 0 ? -1 : monotonic_ns() + timeout_ns;
    for (;;) {
      const std::uint32_t e = notifier_.epoch();
      if (std::uint64_t n = published(); n > after) {
        woken_ns_ = monotonic_ns();  // before the caller takes the GIL back: the "woken" stage
        return n;
      }
      std::int64_t left = -1;
      if (deadline >= 0) {
        left = deadline - monotonic_ns();
        if (left <= 0) {
          const std::uint64_t n = published();
          if (n > after) woken_ns_ = monotonic_ns();
          return n;
        }
      }
      notifier_.wait(e, left);
    }
  }

  // Reader: the window ending at frame `end` (requires window - 1 <= end < published()). The
  // pointer stays valid; its content is trustworthy only if intact(end) holds after reading it.
  const std::uint8_t* window_data(std::uint64_t end) const {
    return slot(static_cast<std::size_t>((end + 1 - window_) % cap_));
  }
  std::int64_t t_ns(std::uint64_t frame) const { return t_ns_[frame % cap_]; }
  // When the frame was published (monotonic ns), and when the last wait_newer() saw a new frame.
  std::int64_t t_published(std::uint64_t frame) const { return t_pub_[frame % cap_]; }
  // When its grab returned (note_grabbed; 0 for a frame pushed without one).
  std::int64_t t_grabbed(std::uint64_t frame) const { return t_grab_[frame % cap_]; }
  std::int64_t woken_ns() const { return woken_ns_; }
  std::uint64_t tick(std::uint64_t frame) const { return tick_[frame % cap_]; }

  // Reader: call after reading window_data(end) (and its t_ns/ticks).
  bool intact(std::uint64_t end) const {
    std::atomic_thread_fence(std::memory_order_acquire);
    return begun_.load(std::memory_order_relaxed) <= end + 1 - window_ + cap_;
  }

  // Reader: copy the window ending at `end` into dst (window * frame_bytes) and, if given, the newest
  // frame's stamp and tick. False if torn (then nothing copied may be used).
  bool copy_window(std::uint64_t end, std::uint8_t* dst, std::int64_t* t_ns_end = nullptr,
                   std::uint64_t* tick_end = nullptr) const {
    std::memcpy(dst, window_data(end), window_ * frame_bytes_);
    if (t_ns_end) *t_ns_end = t_ns(end);
    if (tick_end) *tick_end = tick(end);
    return intact(end);
  }

  std::size_t window() const { return window_; }
  std::size_t slack() const { return cap_ - window_; }
  std::size_t frame_bytes() const override { return frame_bytes_; }

 private:
  struct AlignedDelete {
    void operator()(std::uint8_t* p) const { ::operator delete[](p, std::align_val_t{kFrameAlign}); }
  };
  std::uint8_t* slot(std::size_t i) const { return data_.get() + i * frame_bytes_; }
  std::size_t storage_bytes() const { return (cap_ + window_ - 1) * frame_bytes_; }

  const std::size_t window_, cap_, frame_bytes_;
  std::unique_ptr<std::uint8_t[], AlignedDelete> data_;
  std::unique_ptr<std::int64_t[]> t_ns_;
  std::unique_ptr<std::int64_t[]> t_pub_;
  std::unique_ptr<std::int64_t[]> t_grab_;
  std::unique_ptr<std::uint64_t[]> tick_;
  std::int64_t woken_ns_ = 0;  // consumer only
  bool locked_ = false;

  alignas(kCacheLine) std::atomic<std::uint64_t> begun_{0};  // producer: frames whose write began
  std::atomic<std::uint64_t> published_{0};                 // producer: frames complete
  alignas(kCacheLine) Notifier notifier_;
};

}  // namespace engine
