// Single-producer single-consumer queue of fixed-size frames, used while recording: the capture
// thread produces, the writer consumes. The index logic, memory ordering, drop counting and wake-up
// are SpscIndex's (ring/spsc_index.hpp); this class stores the frames and their stamps.
//
// - Reserve/commit writes a frame in place (acquire()/publish(), the FrameSink interface);
//   frame_at()/pop() reads in place. A frame is never torn: the consumer only sees slots whose commit
//   it has acquired, and the producer never reuses a slot before the consumer's pop has been published.
// - When full the producer drops the newest frame and counts it; it never moves the consumer's index.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include "common/config.hpp"
#include "common/error.hpp"
#include "ring/frame_sink.hpp"
#include "ring/spsc_index.hpp"

namespace engine {

class FrameQueue : public FrameSink {
 public:
  FrameQueue(std::size_t capacity, std::size_t frame_bytes) : index_(capacity), frame_bytes_(frame_bytes) {
    if (capacity < 1 || frame_bytes < 1) throw InvalidArgument("frame queue needs capacity >= 1 and frame_bytes >= 1");
    data_.reset(static_cast<std::uint8_t*>(
        ::operator new[](index_.slots() * frame_bytes_, std::align_val_t{kFrameAlign})));
    t_ns_ = std::make_unique<std::int64_t[]>(index_.slots());
    tick_ = std::make_unique<std::uint64_t[]>(index_.slots());
  }

  // Producer only.
  std::uint8_t* acquire() override {
    const std::size_t w = index_.reserve();
    return w == SpscIndex::kFull ? nullptr : slot(w);
  }

  // Producer only: after acquire() returned a slot.
  void publish(std::int64_t t_ns, std::uint64_t tick) override {
    const std::size_t w = index_.write_slot();
    t_ns_[w] = t_ns;
    tick_[w] = tick;
    index_.commit();
  }

  // Producer only.
  void drop() override { index_.count_drop(); }

  // Consumer only: frames ready to read.
  std::size_t available() { return index_.readable(); }

  // Consumer only: the i-th ready frame, valid until pop(); i < available().
  const std::uint8_t* frame_at(std::size_t i) const { return slot(index_.read_slot(i)); }
  std::int64_t t_ns_at(std::size_t i) const { return t_ns_[index_.read_slot(i)]; }
  std::uint64_t tick_at(std::size_t i) const { return tick_[index_.read_slot(i)]; }

  // Consumer only: release n frames to the producer.
  void pop(std::size_t n) { index_.release(n); }

  // Consumer only: copy up to max ready frames out (at most two memcpy runs) and release them.
  std::size_t pop_into(std::uint8_t* frames, std::int64_t* t_ns, std::uint64_t* ticks, std::size_t max) {
    const std::size_t n = std::min(available(), max);
    const std::size_t r = index_.read_slot(0);
    const std::size_t first = std::min(n, index_.slots() - r);
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
  std::size_t wait(std::int64_t timeout_ns) { return index_.wait(timeout_ns); }

  // Any thread.
  std::uint64_t dropped() const { return index_.dropped(); }
  std::size_t capacity() const { return index_.capacity(); }
  std::size_t frame_bytes() const override { return frame_bytes_; }

 private:
  struct AlignedDelete {
    void operator()(std::uint8_t* p) const { ::operator delete[](p, std::align_val_t{kFrameAlign}); }
  };
  std::uint8_t* slot(std::size_t i) const { return data_.get() + i * frame_bytes_; }

  SpscIndex index_;
  const std::size_t frame_bytes_;
  std::unique_ptr<std::uint8_t[], AlignedDelete> data_;
  std::unique_ptr<std::int64_t[]> t_ns_;
  std::unique_ptr<std::uint64_t[]> tick_;
};

}  // namespace engine
