// Internal: the per-ISA primitives ConvertResize is built from. Each ISA translation unit
// (isa_scalar.cpp, isa_sse2.cpp, isa_avx2.cpp) is compiled with its own flags and exports one table.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/convert_resize.hpp"

namespace engine::kernels {

// BT.601 luma in OpenCV 5's fixed point (15 bits; OpenCV 4 used 14 bits: 1868, 9617, 4899), so
// same-size gray is bit-identical to cv2.cvtColor. Exactly representable as floats.
inline constexpr int kGrayShift = 15;
inline constexpr int kB2Y = 3735, kG2Y = 19235, kR2Y = 9798;
// Fixed-point vertical weights: w * 2^13 fits int16 for w <= 1; a sum over up to 1028 rows of
// 255 * 8192 fits int32. Sums are exact in float up to 8 rows per output row, and within 2^-24
// relative beyond, identically on every path.
inline constexpr int kVShift = 13;
inline constexpr float kB2Yf = kB2Y / 32768.0f, kG2Yf = kG2Y / 32768.0f, kR2Yf = kR2Y / 32768.0f;

struct IsaKernels {
  // acc[i] = sum_j rows[j][i] over `count` rows, for i < n (n = 4*width bytes of BGRA); exact in uint16
  // for count <= 257. All rows are summed in registers, so acc is written once.
  void (*vsum_u16)(const std::uint8_t* const* rows, int count, std::uint16_t* acc, std::size_t n);
  // acc[i] = sum_j w[j] * rows[j][i] over `count` rows, exact in int32 (w in 1/2^kVShift units).
  void (*vsum_i32)(const std::uint8_t* const* rows, const std::int16_t* w, int count, std::int32_t* acc,
                   std::size_t n);
  // One output row from a BGRA accumulator row (zero-padded by h.span pixels): per channel
  // float(even taps) + float(odd taps), times inv_area, converted to gray or RGB.
  void (*hreduce_u16)(const std::uint16_t* acc, const AxisTable& h, int dst_w, float inv_area, Color c,
                      std::uint8_t* out);
  void (*hreduce_i32)(const std::int32_t* acc, const AxisTable& h, int dst_w, float inv_area, Color c,
                      std::uint8_t* out);
  // Same-size conversion of one row.
  void (*direct)(const std::uint8_t* row, int width, Color c, std::uint8_t* out);
};

const IsaKernels& scalar_kernels();
#if defined(__x86_64__) || defined(_M_X64)
#define ENGINE_HAVE_X86_KERNELS 1
const IsaKernels& sse2_kernels();
const IsaKernels& avx2_kernels();
#endif

// Final step shared by every path, so rounding is identical: sums are per-channel B, G, R.
inline std::uint8_t gray_from_sums(float sb, float sg, float sr, float inv_area) {
  const float g = ((sb * kB2Yf + sg * kG2Yf) + sr * kR2Yf) * inv_area;
  const int v = static_cast<int>(g + 0.5f);
  return static_cast<std::uint8_t>(v > 255 ? 255 : v);
}
inline std::uint8_t level_from_sum(float s, float inv_area) {
  const int v = static_cast<int>(s * inv_area + 0.5f);
  return static_cast<std::uint8_t>(v > 255 ? 255 : v);
}
inline void emit_pixel(float sb, float sg, float sr, float inv_area, Color c, std::uint8_t* out, int x) {
  if (c == Color::Gray) {
    out[x] = gray_from_sums(sb, sg, sr, inv_area);
  } else {
    out[3 * x + 0] = level_from_sum(sr, inv_area);
    out[3 * x + 1] = level_from_sum(sg, inv_area);
    out[3 * x + 2] = level_from_sum(sb, inv_area);
  }
}
inline std::uint8_t gray_direct(std::uint32_t b, std::uint32_t g, std::uint32_t r) {
  return static_cast<std::uint8_t>((b * kB2Y + g * kG2Y + r * kR2Y + (1u << (kGrayShift - 1))) >> kGrayShift);
}

}  // namespace engine::kernels
