// The index half of a bounded single-producer single-consumer ring (rigtorp/SPSCQueue, folly's
// ProducerConsumerQueue), shared by the two queues that store items in it: SpscQueue (input events)
// and FrameQueue (recorded frames). The queue owns the storage; this class says which slot to use.
//
// - `slots` = capacity + 1: one slot always stays empty, so read == write means empty and
//   write + 1 == read means full, with no shared counter.
// - Each index sits on its own cache line (kCacheLine), next to the copy its owner keeps of the other
//   side's index. Own index loaded relaxed; the other side's loaded with acquire, and only when the
//   cached copy says full (producer) or when counting what is ready (consumer); publication with
//   release. So an item's bytes, written before commit(), are visible to the consumer that sees the
//   new write index, and a slot is reused only after the consumer's release() has been published.
// - When full the producer drops the newest item and counts it (count_drop()); it never moves the
//   consumer's index.
// - A consumer may sleep in wait() until the producer commits; commit() makes no syscall when nobody
//   waits (common/notifier.hpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "common/config.hpp"
#include "common/notifier.hpp"

namespace engine {

class SpscIndex {
 public:
  static constexpr std::size_t kFull = std::numeric_limits<std::size_t>::max();

  // capacity >= 1 items (checked by the owning queue, which knows what to say).
  explicit SpscIndex(std::size_t capacity) : slots_(capacity + 1) {}

  // Any thread.
  std::size_t slots() const { return slots_; }
  std::size_t capacity() const { return slots_ - 1; }
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

  // Producer only: the slot the next item goes to, or kFull. Does not publish anything.
  std::size_t reserve() {
    const std::size_t w = write_.load(std::memory_order_relaxed);
    const std::size_t next = step(w);
    if (next == read_cache_) {
      read_cache_ = read_.load(std::memory_order_acquire);
      if (next == read_cache_) return kFull;
    }
    return w;
  }

  // Producer only: the slot reserve() returned (valid until commit()).
  std::size_t write_slot() const { return write_.load(std::memory_order_relaxed); }

  // Producer only: publish the reserved slot (its bytes become visible to the consumer), and wake a
  // waiting consumer.
  void commit() {
    write_.store(step(write_.load(std::memory_order_relaxed)), std::memory_order_release);
    notifier_.notify();
  }

  // Producer only: one item lost because the ring was full.
  void count_drop() { dropped_.fetch_add(1, std::memory_order_relaxed); }

  // Consumer only: items ready to read (refreshes the cached write index).
  std::size_t readable() {
    const std::size_t r = read_.load(std::memory_order_relaxed);
    write_cache_ = write_.load(std::memory_order_acquire);
    return write_cache_ >= r ? write_cache_ - r : write_cache_ + slots_ - r;
  }

  // Consumer only: the slot of the i-th ready item, i < readable().
  std::size_t read_slot(std::size_t i) const { return (read_.load(std::memory_order_relaxed) + i) % slots_; }

  // Consumer only: hand n read items back to the producer, n <= readable().
  void release(std::size_t n) {
    read_.store((read_.load(std::memory_order_relaxed) + n) % slots_, std::memory_order_release);
  }

  // Consumer only: sleep until an item is ready or timeout_ns passes (< 0: forever); returns
  // readable(). Spurious wake-ups return 0 early: callers loop.
  std::size_t wait(std::int64_t timeout_ns) {
    const std::uint32_t seen = notifier_.epoch();
    if (const std::size_t n = readable(); n > 0) return n;
    notifier_.wait(seen, timeout_ns);
    return readable();
  }

  static constexpr bool layout_ok();

 private:
  std::size_t step(std::size_t i) const { return i + 1 == slots_ ? 0 : i + 1; }

  const std::size_t slots_;
  alignas(kCacheLine) std::atomic<std::size_t> write_{0};  // written by the producer
  std::size_t read_cache_ = 0;                             // producer's copy of read_
  std::atomic<std::uint64_t> dropped_{0};                  // producer increments
  alignas(kCacheLine) std::atomic<std::size_t> read_{0};   // written by the consumer
  std::size_t write_cache_ = 0;                            // consumer's copy of write_
  alignas(kCacheLine) Notifier notifier_;                  // both sides touch it: its own line
};

// The producer's line, the consumer's line and the notifier never share a cache line.
constexpr bool SpscIndex::layout_ok() {
  return offsetof(SpscIndex, write_) % kCacheLine == 0 && offsetof(SpscIndex, dropped_) < offsetof(SpscIndex, read_) &&
         offsetof(SpscIndex, read_) - offsetof(SpscIndex, write_) >= kCacheLine &&
         offsetof(SpscIndex, notifier_) - offsetof(SpscIndex, read_) >= kCacheLine;
}
static_assert(std::is_standard_layout_v<SpscIndex> && SpscIndex::layout_ok() && alignof(SpscIndex) == kCacheLine,
              "each index must sit on its own cache line");

}  // namespace engine
