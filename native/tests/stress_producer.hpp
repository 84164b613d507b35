// Test-only producer (built into engine._native_testing, never the shipped module): a native thread
// that publishes frames into a FrameSink as fast as it can (or at a fixed period), each frame a
// pattern derived from its sequence number so a consumer can verify every byte: bytes [0, 8) hold
// seq, byte k >= 8 holds (seq * 131 + k) & 0xff.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>

#include "common/clock.hpp"
#include "ring/frame_sink.hpp"
#include "timing/pacer.hpp"

namespace engine {

inline void fill_pattern(std::uint8_t* frame, std::size_t bytes, std::uint64_t seq) {
  for (std::size_t k = 8; k < bytes; ++k) frame[k] = static_cast<std::uint8_t>(seq * 131 + k);
  std::memcpy(frame, &seq, std::min<std::size_t>(8, bytes));
}

class StressProducer {
 public:
  // period_ns 0: as fast as possible.
  StressProducer(std::shared_ptr<FrameSink> sink, std::uint64_t frames, std::int64_t period_ns = 0)
      : sink_(std::move(sink)), frames_(frames), period_(period_ns) {}
  ~StressProducer() { join(); }

  void start() {
    thread_ = std::thread([this] {
      std::unique_ptr<Pacer> pacer;
      if (period_ > 0) pacer = std::make_unique<Pacer>(period_);
      for (std::uint64_t seq = 0; seq < frames_; ++seq) {
        if (pacer) pacer->wait();
        std::uint8_t* slot = sink_->acquire();
        if (slot == nullptr) {
          sink_->drop();
          dropped_.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        fill_pattern(slot, sink_->frame_bytes(), seq);
        sink_->publish(monotonic_ns(), seq);
        published_.fetch_add(1, std::memory_order_relaxed);
      }
      done_.store(true, std::memory_order_release);
    });
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  bool done() const { return done_.load(std::memory_order_acquire); }
  std::uint64_t published() const { return published_.load(std::memory_order_relaxed); }
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  std::shared_ptr<FrameSink> sink_;
  const std::uint64_t frames_;
  const std::int64_t period_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<std::uint64_t> published_{0}, dropped_{0};
};

}  // namespace engine
