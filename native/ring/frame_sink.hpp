// What the capture loop writes into: a slot to fill in place, then publish. Implemented by the
// recording queue (FrameQueue) and the play window (LatestRing).
#pragma once

#include <cstddef>
#include <cstdint>

namespace engine {

class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // Producer only. A slot of frame_bytes() to fill, or nullptr when the sink is full (the producer
  // then calls drop() and skips the grab).
  virtual std::uint8_t* acquire() = 0;
  // Producer only, optional: when the grab of the frame being written returned (the latency breakdown's
  // "grabbed" stage, between capture and publish; the play ring keeps it).
  virtual void note_grabbed(std::int64_t /*t_ns*/) {}
  // Producer only. Publishes the slot returned by the last acquire().
  virtual void publish(std::int64_t t_ns, std::uint64_t tick) = 0;
  // Producer only. Counts one frame lost because the sink was full.
  virtual void drop() = 0;
  virtual std::size_t frame_bytes() const = 0;
};

}  // namespace engine
