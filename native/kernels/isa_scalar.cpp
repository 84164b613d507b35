// Portable scalar path: the reference the SIMD paths must match bit for bit. Built with
// auto-vectorisation off (CMakeLists.txt) so that "scalar" really is scalar when tests force it.
#include "kernels/kernel_isa.hpp"

namespace engine::kernels {
namespace {

void vsum_u16(const std::uint8_t* const* rows, int count, std::uint16_t* acc, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    unsigned s = 0;
    for (int j = 0; j < count; ++j) s += rows[j][i];
    acc[i] = static_cast<std::uint16_t>(s);
  }
}

void vsum_i32(const std::uint8_t* const* rows, const std::int16_t* w, int count, std::int32_t* acc,
              std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    std::int32_t s = 0;
    for (int j = 0; j < count; ++j) s += w[j] * rows[j][i];
    acc[i] = s;
  }
}

template <typename T>
void hreduce(const T* acc, const AxisTable& h, int dst_w, float inv_area, Color c, std::uint8_t* out) {
  for (int x = 0; x < dst_w; ++x) {
    const T* a = acc + 4 * static_cast<std::ptrdiff_t>(h.start[x]);
    const float* w = h.expanded.data() + static_cast<std::ptrdiff_t>(x) * h.span * 4;
    float even[3] = {0.0f, 0.0f, 0.0f}, odd[3] = {0.0f, 0.0f, 0.0f};
    for (int j = 0; j < h.span; j += 2) {
      for (int ch = 0; ch < 3; ++ch) {
        even[ch] = even[ch] + w[4 * j + ch] * static_cast<float>(a[4 * j + ch]);
        odd[ch] = odd[ch] + w[4 * j + 4 + ch] * static_cast<float>(a[4 * j + 4 + ch]);
      }
    }
    emit_pixel(even[0] + odd[0], even[1] + odd[1], even[2] + odd[2], inv_area, c, out, x);
  }
}

void hreduce_u16(const std::uint16_t* acc, const AxisTable& h, int dst_w, float inv_area, Color c,
                 std::uint8_t* out) {
  hreduce(acc, h, dst_w, inv_area, c, out);
}

void hreduce_i32(const std::int32_t* acc, const AxisTable& h, int dst_w, float inv_area, Color c,
                 std::uint8_t* out) {
  hreduce(acc, h, dst_w, inv_area, c, out);
}

void direct(const std::uint8_t* row, int width, Color c, std::uint8_t* out) {
  if (c == Color::Gray) {
    for (int x = 0; x < width; ++x) out[x] = gray_direct(row[4 * x], row[4 * x + 1], row[4 * x + 2]);
  } else {
    for (int x = 0; x < width; ++x) {
      out[3 * x + 0] = row[4 * x + 2];
      out[3 * x + 1] = row[4 * x + 1];
      out[3 * x + 2] = row[4 * x + 0];
    }
  }
}

}  // namespace

const IsaKernels& scalar_kernels() {
  static const IsaKernels k{vsum_u16, vsum_i32, hreduce_u16, hreduce_i32, direct};
  return k;
}

}  // namespace engine::kernels
