// Planner and dispatcher for the fused convert+resize. See convert_resize.hpp for the contract.
#include "kernels/convert_resize.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.hpp"
#include "kernels/kernel_isa.hpp"

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

namespace engine {

namespace {

bool cpu_has_avx2() {
#if defined(ENGINE_HAVE_X86_KERNELS)
#if defined(_MSC_VER) && !defined(__clang__)
  int r[4];
  __cpuid(r, 0);
  if (r[0] < 7) return false;
  __cpuidex(r, 7, 0);
  const bool avx2 = (r[1] & (1 << 5)) != 0;
  __cpuid(r, 1);
  const bool osxsave = (r[2] & (1 << 27)) != 0;
  // The OS must save the YMM state (XCR0 bits 1 and 2).
  return avx2 && osxsave && ((_xgetbv(0) & 6) == 6);
#else
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
#endif
#else
  return false;
#endif
}

const kernels::IsaKernels& isa_for(KernelPath p) {
  switch (p) {
#if defined(ENGINE_HAVE_X86_KERNELS)
    case KernelPath::Sse2:
      return kernels::sse2_kernels();
    case KernelPath::Avx2:
      return kernels::avx2_kernels();
#endif
    default:
      return kernels::scalar_kernels();
  }
}

}  // namespace

const char* kernel_path_name(KernelPath p) {
  switch (p) {
    case KernelPath::Auto:
      return "auto";
    case KernelPath::Scalar:
      return "scalar";
    case KernelPath::Sse2:
      return "sse2";
    case KernelPath::Avx2:
      return "avx2";
  }
  return "?";
}

bool kernel_path_available(KernelPath p) {
  switch (p) {
    case KernelPath::Auto:
    case KernelPath::Scalar:
      return true;
#if defined(ENGINE_HAVE_X86_KERNELS)
    case KernelPath::Sse2:
      return true;  // baseline of x86-64
    case KernelPath::Avx2:
      return cpu_has_avx2();
#endif
    default:
      return false;
  }
}

KernelPath best_kernel_path() {
  static const KernelPath best = kernel_path_available(KernelPath::Avx2)   ? KernelPath::Avx2
                                 : kernel_path_available(KernelPath::Sse2) ? KernelPath::Sse2
                                                                           : KernelPath::Scalar;
  return best;
}

namespace kernels {

// Output i covers source interval [i*s, (i+1)*s), s = src/dst. Each source pixel it touches gets the
// length of the overlap; slivers under 1e-3 of a pixel are dropped as OpenCV's computeResizeAreaTab
// does, unless they are the only contribution.
AxisTable area_table(int src, int dst) {
  AxisTable t;
  const double scale = static_cast<double>(src) / dst;
  t.start.resize(dst);
  t.count.resize(dst);
  t.offset.resize(dst);
  for (int i = 0; i < dst; ++i) {
    const double f0 = i * scale;
    const double f1 = std::min(f0 + scale, static_cast<double>(src));
    int first = static_cast<int>(std::floor(f0));
    const int last = std::min(static_cast<int>(std::ceil(f1)), src);  // exclusive
    t.offset[i] = static_cast<std::int32_t>(t.weight.size());
    int begin = -1;
    for (int p = first; p < last; ++p) {
      const double w = std::min<double>(p + 1, f1) - std::max<double>(p, f0);
      if (w < 1e-3 && !(last - first == 1)) {
        if (begin < 0) continue;  // leading sliver: skip
        break;                    // trailing sliver: stop
      }
      if (begin < 0) begin = p;
      t.weight.push_back(static_cast<float>(w));
    }
    t.start[i] = begin;
    t.count[i] = static_cast<std::int32_t>(t.weight.size()) - t.offset[i];
    t.span = std::max(t.span, t.count[i]);
  }
  t.span += t.span % 2;
  t.expanded.assign(static_cast<std::size_t>(dst) * t.span * 4, 0.0f);
  for (int i = 0; i < dst; ++i) {
    for (int j = 0; j < t.count[i]; ++j) {
      std::fill_n(t.expanded.begin() + (static_cast<std::ptrdiff_t>(i) * t.span + j) * 4, 4, t.weight[t.offset[i] + j]);
    }
  }
  return t;
}

}  // namespace kernels

ConvertResize::ConvertResize(int src_w, int src_h, int dst_w, int dst_h, Color color, KernelPath path)
    : src_w_(src_w), src_h_(src_h), dst_w_(dst_w), dst_h_(dst_h), color_(color) {
  if (src_w <= 0 || src_h <= 0 || dst_w <= 0 || dst_h <= 0) {
    throw InvalidArgument("sizes must be positive: source " + std::to_string(src_w) + "x" +
                          std::to_string(src_h) + ", output " + std::to_string(dst_w) + "x" +
                          std::to_string(dst_h));
  }
  if (color != Color::Gray && color != Color::Rgb) throw InvalidArgument("color must be gray or rgb");
  if (path == KernelPath::Auto) path = best_kernel_path();
  if (!kernel_path_available(path)) {
    throw InvalidArgument(std::string("kernel path '") + kernel_path_name(path) +
                          "' is not available on this CPU; use 'auto'");
  }
  path_ = path;
  isa_ = &isa_for(path);
  direct_ = (src_w == dst_w && src_h == dst_h);
  inv_area_ = static_cast<float>(static_cast<double>(dst_w) * dst_h / (static_cast<double>(src_w) * src_h));
  if (direct_) return;
  h_ = kernels::area_table(src_w, dst_w);
  const std::size_t padded = (static_cast<std::size_t>(src_w) + h_.span) * 4;
  // An integer vertical factor up to 257 rows sums exactly in uint16 (257 * 255 < 65536), which is
  // half the memory traffic of float accumulation and needs no weights.
  if (src_h % dst_h == 0 && src_h / dst_h <= 257) {
    ky_ = src_h / dst_h;
    acc16_.assign(padded, 0);
    rows_.resize(static_cast<std::size_t>(ky_));
  } else {
    v_ = kernels::area_table(src_h, dst_h);
    int max_rows = 0;
    for (int c : v_.count) max_rows = std::max(max_rows, c);
    // int32 sums hold 255 * 8192 * rows for up to 1028 rows.
    if (max_rows > 1000) {
      throw InvalidArgument("output height " + std::to_string(dst_h) + " is too small for " + std::to_string(src_h) +
                            " source rows (over 1000 rows per output row); pick at least " +
                            std::to_string(src_h / 1000 + 1));
    }
    vq_.resize(v_.weight.size());
    for (std::size_t i = 0; i < vq_.size(); ++i) {
      vq_[i] = static_cast<std::int16_t>(std::lround(v_.weight[i] * (1 << kernels::kVShift)));
    }
    inv_area_ /= static_cast<float>(1 << kernels::kVShift);  // exact: a power of two
    acc32_.assign(padded, 0);
    rows_.resize(static_cast<std::size_t>(max_rows));
  }
}

void ConvertResize::run(const BgraView& src, const PixelsOut& dst) {
  if (src.width != src_w_ || src.height != src_h_ || dst.width != dst_w_ || dst.height != dst_h_) {
    throw InvalidArgument("convert_resize prepared for " + std::to_string(src_w_) + "x" +
                          std::to_string(src_h_) + " -> " + std::to_string(dst_w_) + "x" +
                          std::to_string(dst_h_) + ", called with " + std::to_string(src.width) + "x" +
                          std::to_string(src.height) + " -> " + std::to_string(dst.width) + "x" +
                          std::to_string(dst.height));
  }
  if (src.stride < static_cast<std::ptrdiff_t>(src.width) * 4 ||
      dst.stride < static_cast<std::ptrdiff_t>(dst.width) * channels(color_)) {
    throw InvalidArgument("row pitch smaller than the row");
  }
  const std::size_t n = static_cast<std::size_t>(src_w_) * 4;
  auto src_row = [&](int y) { return src.data + static_cast<std::ptrdiff_t>(y) * src.stride; };
  if (direct_) {
    for (int y = 0; y < src_h_; ++y) isa_->direct(src_row(y), src_w_, color_, dst.data + y * dst.stride);
    return;
  }
  for (int oy = 0; oy < dst_h_; ++oy) {
    std::uint8_t* out = dst.data + static_cast<std::ptrdiff_t>(oy) * dst.stride;
    if (ky_ > 0) {
      const int y0 = oy * ky_;
      for (int j = 0; j < ky_; ++j) rows_[j] = src_row(y0 + j);
      isa_->vsum_u16(rows_.data(), ky_, acc16_.data(), n);
      isa_->hreduce_u16(acc16_.data(), h_, dst_w_, inv_area_, color_, out);
    } else {
      const int y0 = v_.start[oy], cnt = v_.count[oy];
      for (int j = 0; j < cnt; ++j) rows_[j] = src_row(y0 + j);
      isa_->vsum_i32(rows_.data(), vq_.data() + v_.offset[oy], cnt, acc32_.data(), n);
      isa_->hreduce_i32(acc32_.data(), h_, dst_w_, inv_area_, color_, out);
    }
  }
}

void convert_resize(const BgraView& src, const PixelsOut& dst, Color color, KernelPath path) {
  ConvertResize plan(src.width, src.height, dst.width, dst.height, color, path);
  plan.run(src, dst);
}

}  // namespace engine
