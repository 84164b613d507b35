// Single-producer single-consumer queue of fixed-size frames (after rigtorp/SPSCQueue and folly's
// ProducerConsumerQueue), used while recording: the capture thread produces, the writer consumes.
//
// - Each index sits on its own cache line; each side caches the other's index and reloads it
//   (acquire) only when the cached value says full/empty; own index loaded relaxed, published with
//   release.
// - Reserve/commit writes a frame in place; frame_at()/pop() reads in place. A frame is never torn:
//   the consumer only sees slots whose commit it has acquired, and the producer never reuses a slot
//   before the consumer's pop has been published.
// - When full the producer drops the newest frame and counts it; it never moves the consumer's
//   index.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/notifier.hpp"
#include "ring/frame_sink.hpp"

namespace engine {

class FrameQueue : public FrameSink {
 public:
  FrameQueue(std::size_t capacity, std::size_t frame_bytes)
      : capacity_(capacity + 1),  // one slot is always empty to tell full from empty
        frame_bytes_(frame_bytes) {
    if (capacity < 1 || frame_bytes < 1) throw InvalidArgument("frame queue needs capacity >= 1 and frame_bytes >= 1");
    data_.reset(static_cast<std::uint8_t*>(
        ::operator new[](capacity_ * frame_bytes_, std::align_val_t{kFrameAlign})));
    t_ns_ = std::make_unique<std::int64_t[]>(capacity_);
    tick_ = std::make_unique<std::uint64_t[]>(capacity_);
  }

  // Producer only.
  std::uint8_t* acquire() override {
    const std::size_t w = write_.load(std::memory_order_relaxed);
    const std::size_t next = w + 1 == capacity_ ? 0 : w + 1;
    if (next == read_cache_) {
      read_cache_ = read_.load(std::memory_order_acquire);
      if (next == read_cache_) return nullptr;
    }
    return slot(w);
  }

  // Producer only: after acquire() returned a slot.
  void publish(std::int64_t t_ns, std::uint64_t tick) override {
    const std::size_t w = write_.load(std::memory_order_relaxed);
    t_ns_[w] = t_ns;
    tick_[w] = tick;
    write_.store(w + 1 == capacity_ ? 0 : w + 1, std::memory_order_release);
    notifier_.notify();
  }

  // Producer only.
  void drop() override { dropped_.fetch_add(1, std::memory_order_relaxed); }

  // Consumer only: frames ready to read.
  std::size_t available() {
    const std::size_t r = read_.load(std::memory_order_relaxed);
    write_cache_ = write_.load(std::memory_order_acquire);
    return write_cache_ >= r ? write_cache_ - r : write_cache_ + capacity_ - r;
  }

  // Consumer only: the i-th ready frame, valid until pop(); i < available().
  const std::uint8_t* frame_at(std::size_t i) const { return slot(index(i)); }
  std::int64_t t_ns_at(std::size_t i) const { return t_ns_[index(i)]; }
  std::uint64_t tick_at(std::size_t i) const { return tick_[index(i)]; }

  // Consumer only: release n frames to the producer.
  void pop(std::size_t n) {
    const std::size_t r = read_.load(std::memory_order_relaxed);
    read_.store((r + n) % capacity_, std::memory_order_release);
  }

  // Consumer only: copy up to max ready frames out (at most two memcpy runs) and release them.
  std::size_t pop_into(std::uint8_t* frames, std::int64_t* t_ns, std::uint64_t* ticks, std::size_t max) {
    const std::size_t n = std::min(available(), max);
    const std::size_t r = read_.load(std::memory_order_relaxed);
    const std::size_t first = std::min(n, capacity_ - r);
    std::memcpy(frames, slot(r), first * frame_bytes_);
    std::memcpy(frames + first * frame_bytes_, slot(0), (n - first) * frame_bytes_);
    for (std::size_t i = 0; i < n; ++i) {
      t_ns[i] = t_ns_at(i);
      ticks[i] = tick_at(i);
    }
    pop(n);
    return n;
  }

  // Consumer only: sleep until a frame is ready or timeout_ns passes. Returns available().
  std::size_t wait(std::int64_t timeout_ns) {
    const std::uint32_t e = notifier_.epoch();
    if (std::size_t n = available(); n > 0) return n;
    notifier_.wait(e, timeout_ns);
    return available();
  }

  // Any thread.
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  std::size_t capacity() const { return capacity_ - 1; }
  std::size_t frame_bytes() const override { return frame_bytes_; }

 private:
  struct AlignedDelete {
    void operator()(std::uint8_t* p) const { ::operator delete[](p, std::align_val_t{kFrameAlign}); }
  };
  std::size_t index(std::size_t i) const {
    return (read_.load(std::memory_order_relaxed) + i) % capacity_;
  }
  std::uint8_t* slot(std::size_t i) const { return data_.get() + i * frame_bytes_; }

  const std::size_t capacity_;
  const std::size_t frame_bytes_;
  std::unique_ptr<std::uint8_t[], AlignedDelete> data_;
  std::unique_ptr<std::int64_t[]> t_ns_;
  std::unique_ptr<std::uint64_t[]> tick_;

  alignas(kCacheLine) std::atomic<std::size_t> write_{0};  // written by the producer
  std::size_t read_cache_ = 0;                             // producer's copy of read_
  std::atomic<std::uint64_t> dropped_{0};                  // producer increments
  alignas(kCacheLine) std::atomic<std::size_t> read_{0};   // written by the consumer
  std::size_t write_cache_ = 0;                            // consumer's copy of write_
  alignas(kCacheLine) Notifier notifier_;
};

static_assert(alignof(FrameQueue) >= kCacheLine, "indices must sit on their own cache lines");

}  // namespace engine
