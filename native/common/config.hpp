// Project-wide constants and small platform helpers shared by every native module.
#pragma once

#include <cstddef>
#include <cstdint>

namespace engine {

// Cache-line size used to keep producer and consumer indices apart. A project constant rather than
// std::hardware_destructive_interference_size, which is not ABI-stable across compiler flags.
inline constexpr std::size_t kCacheLine = 64;

// Alignment of frame slots and kernel buffers: one cache line also satisfies AVX2 (32 bytes).
inline constexpr std::size_t kFrameAlign = 64;

constexpr std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }

}  // namespace engine
