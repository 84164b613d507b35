// Bounded single-producer single-consumer queue of trivially copyable items (the input listeners'
// event queue). The index logic, memory ordering and wake-up are SpscIndex's (ring/spsc_index.hpp);
// this class only stores the items. When full the producer drops the newest item and counts it.
#pragma once

#include <cstdint>
#include <memory>
#include <type_traits>

#include "ring/spsc_index.hpp"

namespace engine {

template <typename T>
class SpscQueue {
  static_assert(std::is_trivially_copyable_v<T>, "items are copied with plain assignment");

 public:
  explicit SpscQueue(std::size_t capacity) : index_(capacity), items_(std::make_unique<T[]>(index_.slots())) {}

  // Producer only. False (and counted) when full.
  bool push(const T& item) {
    const std::size_t w = index_.reserve();
    if (w == SpscIndex::kFull) {
      index_.count_drop();
      return false;
    }
    items_[w] = item;
    index_.commit();
    return true;
  }

  // Consumer only: move up to max items to out; returns how many.
  std::size_t pop(T* out, std::size_t max) {
    const std::size_t ready = index_.readable();
    const std::size_t n = ready < max ? ready : max;
    for (std::size_t i = 0; i < n; ++i) out[i] = items_[index_.read_slot(i)];
    index_.release(n);
    return n;
  }

  // Consumer only: sleep until an item may be ready or timeout_ns passes.
  void wait(std::int64_t timeout_ns) { index_.wait(timeout_ns); }

  // Any thread.
  std::uint64_t dropped() const { return index_.dropped(); }

 private:
  SpscIndex index_;
  std::unique_ptr<T[]> items_;
};

}  // namespace engine
