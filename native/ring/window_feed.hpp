// Model input from the play ring in one pass: the window ending at frame `end` (frames
// end - (W-1)*skip, ..., end, oldest first) is read from a LatestRing holding at least (W-1)*skip + 1
// frames and written straight into the interpreter's input tensor, each byte mapped through a
// 256-entry table of the tensor's element type (scaling and quantisation folded into the table).
//
// Layouts: kFrames writes (W, H, W', C) — frame after frame; kChannels writes (H, W', W*C) — frames
// stacked on the channel axis. Returns false when the producer overwrote the window during the copy
// (see LatestRing): the caller retries with the newest frame.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ring/latest_ring.hpp"

namespace engine {

enum class InputLayout : std::uint8_t { kFrames, kChannels };

template <typename T>
bool feed_window(const LatestRing& ring, std::uint64_t end, std::size_t window, std::size_t skip, const T* lut,
                 InputLayout layout, std::size_t channels, T* dst, std::int64_t* t_end, std::uint64_t* tick_end) {
  const std::size_t fb = ring.frame_bytes();
  const std::size_t pixels = fb / channels;
  const std::uint8_t* base = ring.window_data(end);  // the ring's own window: (W-1)*skip + 1 frames
  if (layout == InputLayout::kFrames) {
    for (std::size_t f = 0; f < window; ++f) {
      const std::uint8_t* src = base + f * skip * fb;
      T* out = dst + f * fb;
      for (std::size_t i = 0; i < fb; ++i) out[i] = lut[src[i]];
    }
  } else {
    const std::size_t stride = window * channels;
    for (std::size_t f = 0; f < window; ++f) {
      const std::uint8_t* src = base + f * skip * fb;
      T* out = dst + f * channels;
      for (std::size_t p = 0; p < pixels; ++p) {
        for (std::size_t c = 0; c < channels; ++c) out[p * stride + c] = lut[src[p * channels + c]];
      }
    }
  }
  *t_end = ring.t_ns(end);
  *tick_end = ring.tick(end);
  return ring.intact(end);
}

}  // namespace engine
