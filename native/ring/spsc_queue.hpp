// Bounded single-producer single-consumer queue of trivially copyable items (rigtorp/SPSCQueue's
// layout): indices on separate cache lines, cached opposite index, acquire/release publication.
// When full the producer drops the newest item and counts it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "common/config.hpp"
#include "common/notifier.hpp"

namespace engine {

template <typename T>
class SpscQueue {
  static_assert(std::is_trivially_copyable_v<T>, "items are copied with plain assignment");

 public:
  explicit SpscQueue(std::size_t capacity) : cap_(capacity + 1), items_(std::make_unique<T[]>(capacity + 1)) {}

  // Producer only. False (and counted) when full.
  bool push(const T& item) {
    const std::size_t w = write_.load(std::memory_order_relaxed);
    const std::size_t next = w + 1 == cap_ ? 0 : w + 1;
    if (next == read_cache_) {
      read_cache_ = read_.load(std::memory_order_acquire);
      if (next == read_cache_) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
    }
    items_[w] = item;
    write_.store(next, std::memory_order_release);
    notifier_.notify();
    return true;
  }

  // Consumer only: move up to max items to out; returns how many.
  std::size_t pop(T* out, std::size_t max) {
    std::size_t r = read_.load(std::memory_order_relaxed);
    std::size_t n = 0;
    while (n < max) {
      if (r == write_cache_) {
        write_cache_ = write_.load(std::memory_order_acquire);
        if (r == write_cache_) break;
      }
      out[n++] = items_[r];
      r = r + 1 == cap_ ? 0 : r + 1;
    }
    read_.store(r, std::memory_order_release);
    return n;
  }

  // Consumer only: sleep until an item may be ready or timeout_ns passes.
  void wait(std::int64_t timeout_ns) {
    const std::uint32_t e = notifier_.epoch();
    if (read_.load(std::memory_order_relaxed) != write_.load(std::memory_order_acquire)) return;
    notifier_.wait(e, timeout_ns);
  }

  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  const std::size_t cap_;
  std::unique_ptr<T[]> items_;
  alignas(kCacheLine) std::atomic<std::size_t> write_{0};
  std::size_t read_cache_ = 0;
  std::atomic<std::uint64_t> dropped_{0};
  alignas(kCacheLine) std::atomic<std::size_t> read_{0};
  std::size_t write_cache_ = 0;
  alignas(kCacheLine) Notifier notifier_;
};

}  // namespace engine
