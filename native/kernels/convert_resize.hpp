// Fused BGRA -> gray|RGB conversion and area (box) resize in one pass over the source pixels.
//
// Contract:
// - Source: 8-bit BGRA (X11 ZPixmap at depth 24/32, DXGI B8G8R8A8), any row pitch >= 4*width.
// - Output: gray (1 byte/pixel, BT.601 weights as OpenCV 5's cvtColor: 3735, 19235, 9798 / 2^15) or
//   RGB (3 bytes/pixel), any row pitch >= channels*width.
// - Same size: exact per-pixel conversion (gray is bit-identical to cv2.cvtColor(BGRA2GRAY)).
// - Other sizes: each output pixel is the area-weighted mean of the source pixels its footprint
//   covers (OpenCV INTER_AREA's weights for downscaling; also defined for upscaling, where OpenCV
//   switches to bilinear and we do not follow it). Within 1 level of cvtColor + resize(INTER_AREA).
// - Vertical accumulation is exact integer arithmetic: plain uint16 sums for an integer factor,
//   otherwise 13-bit fixed-point weights (pmaddwd over row pairs). The horizontal pass is float, with
//   one canonical order per output channel: (sum over even taps) + (sum over odd taps), each in order.
// - Every kernel path (scalar, SSE2, AVX2) gives bit-identical output: integer sums are exact, the
//   float operations are the same per element and in the same order, and the build forbids
//   contraction into FMA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace engine {

enum class Color : std::uint8_t { Gray = 1, Rgb = 3 };
enum class KernelPath : std::uint8_t { Auto = 0, Scalar = 1, Sse2 = 2, Avx2 = 3 };

inline int channels(Color c) { return static_cast<int>(c); }
const char* kernel_path_name(KernelPath p);
bool kernel_path_available(KernelPath p);
KernelPath best_kernel_path();

struct BgraView {
  const std::uint8_t* data;
  int width;
  int height;
  std::ptrdiff_t stride;  // bytes between rows
};

struct PixelsOut {
  std::uint8_t* data;
  int width;
  int height;
  std::ptrdiff_t stride;  // bytes between rows
};

namespace kernels {
// Area weights along one axis: output i covers source [start[i], start[i]+count[i]) with
// weight[offset[i] + j] for source start[i]+j, in source-pixel units.
// For the horizontal pass, `span` (max count rounded up to even) weights per output, zero past count,
// each repeated 4 times (one per BGRA channel): `expanded`. Adding 0 * x changes no sum, so SIMD code
// can run every output over the same span.
struct AxisTable {
  std::vector<std::int32_t> start, count, offset;
  std::vector<float> weight;
  int span = 0;
  std::vector<float> expanded;
};
AxisTable area_table(int src, int dst);
struct IsaKernels;
}  // namespace kernels

// A prepared conversion from one source size to one output size. The weight tables and the row
// accumulator are built once; run() only touches pixels. Not thread-safe: one per capture thread.
class ConvertResize {
 public:
  ConvertResize(int src_w, int src_h, int dst_w, int dst_h, Color color,
                KernelPath path = KernelPath::Auto);

  // Throws InvalidArgument when the views do not match the prepared sizes.
  void run(const BgraView& src, const PixelsOut& dst);

  KernelPath path() const { return path_; }
  Color color() const { return color_; }
  int src_width() const { return src_w_; }
  int src_height() const { return src_h_; }
  int dst_width() const { return dst_w_; }
  int dst_height() const { return dst_h_; }
  std::size_t frame_bytes() const {
    return static_cast<std::size_t>(dst_w_) * dst_h_ * channels(color_);
  }

 private:
  int src_w_, src_h_, dst_w_, dst_h_;
  Color color_;
  KernelPath path_;
  const kernels::IsaKernels* isa_;
  bool direct_;     // same size: per-pixel conversion, no accumulation
  int ky_ = 0;      // > 0: integer vertical factor summed exactly in uint16
  float inv_area_;  // 1 / (source pixels per output pixel), times 2^-kVShift on the weighted path
  kernels::AxisTable h_, v_;
  std::vector<std::int16_t> vq_;  // v_.weight in fixed point
  std::vector<std::uint16_t> acc16_;
  std::vector<std::int32_t> acc32_;  // accumulator rows are zero-padded by h_.span pixels
  std::vector<const std::uint8_t*> rows_;
};

// One-shot helper (tests, tools): prepares and runs. Hot loops keep a ConvertResize instead.
void convert_resize(const BgraView& src, const PixelsOut& dst, Color color,
                    KernelPath path = KernelPath::Auto);

}  // namespace engine
