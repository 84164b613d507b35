// SSE2 path (the x86-64 baseline). Per element it performs the scalar path's operations in the
// same order, four lanes at a time, so its output is bit-identical to isa_scalar.cpp.
#include <emmintrin.h>

#include <cstring>

#include "kernels/kernel_isa.hpp"

namespace engine::kernels {
namespace {

void vsum_u16(const std::uint8_t* const* rows, int count, std::uint16_t* acc, std::size_t n) {
  const __m128i zero = _mm_setzero_si128();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m128i lo = zero, hi = zero;
    for (int j = 0; j < count; ++j) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[j] + i));
      lo = _mm_add_epi16(lo, _mm_unpacklo_epi8(v, zero));
      hi = _mm_add_epi16(hi, _mm_unpackhi_epi8(v, zero));
    }
    auto* a = reinterpret_cast<__m128i*>(acc + i);
    _mm_storeu_si128(a, lo);
    _mm_storeu_si128(a + 1, hi);
  }
  for (; i < n; ++i) {
    unsigned s = 0;
    for (int j = 0; j < count; ++j) s += rows[j][i];
    acc[i] = static_cast<std::uint16_t>(s);
  }
}

// Two rows at a time: interleave their bytes as int16 pairs and let pmaddwd form
// a[i] * wa + b[i] * wb in int32. An odd row is paired with itself at weight 0.
void vsum_i32(const std::uint8_t* const* rows, const std::int16_t* w, int count, std::int32_t* acc,
              std::size_t n) {
  const __m128i zero = _mm_setzero_si128();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m128i s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    for (int j = 0; j < count; j += 2) {
      const bool pair = j + 1 < count;
      const __m128i ra = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[j] + i));
      const __m128i rb = pair ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[j + 1] + i)) : zero;
      const __m128i wab = _mm_set1_epi32(static_cast<int>(static_cast<std::uint16_t>(w[j])) |
                                         (pair ? static_cast<int>(w[j + 1]) << 16 : 0));
      const __m128i alo = _mm_unpacklo_epi8(ra, zero), ahi = _mm_unpackhi_epi8(ra, zero);
      const __m128i blo = _mm_unpacklo_epi8(rb, zero), bhi = _mm_unpackhi_epi8(rb, zero);
      s0 = _mm_add_epi32(s0, _mm_madd_epi16(_mm_unpacklo_epi16(alo, blo), wab));
      s1 = _mm_add_epi32(s1, _mm_madd_epi16(_mm_unpackhi_epi16(alo, blo), wab));
      s2 = _mm_add_epi32(s2, _mm_madd_epi16(_mm_unpacklo_epi16(ahi, bhi), wab));
      s3 = _mm_add_epi32(s3, _mm_madd_epi16(_mm_unpackhi_epi16(ahi, bhi), wab));
    }
    auto* a = reinterpret_cast<__m128i*>(acc + i);
    _mm_storeu_si128(a, s0);
    _mm_storeu_si128(a + 1, s1);
    _mm_storeu_si128(a + 2, s2);
    _mm_storeu_si128(a + 3, s3);
  }
  for (; i < n; ++i) {
    std::int32_t s = 0;
    for (int j = 0; j < count; ++j) s += w[j] * rows[j][i];
    acc[i] = s;
  }
}

inline __m128 load4(const std::uint16_t* a) {
  const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(a));
  return _mm_cvtepi32_ps(_mm_unpacklo_epi16(v, _mm_setzero_si128()));
}
inline __m128 load4(const std::int32_t* a) {
  return _mm_cvtepi32_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a)));
}

// One BGRA pixel per register, even and odd taps in separate accumulators (the canonical order), two
// output pixels in lockstep so four independent add chains hide the add latency.
template <typename T>
void hreduce(const T* acc, const AxisTable& h, int dst_w, float inv_area, Color c, std::uint8_t* out) {
  alignas(16) float s[8];
  const std::ptrdiff_t step = static_cast<std::ptrdiff_t>(h.span) * 4;
  int x = 0;
  for (; x + 2 <= dst_w; x += 2) {
    const T* a0 = acc + 4 * static_cast<std::ptrdiff_t>(h.start[x]);
    const T* a1 = acc + 4 * static_cast<std::ptrdiff_t>(h.start[x + 1]);
    const float* w0 = h.expanded.data() + x * step;
    const float* w1 = w0 + step;
    __m128 e0 = _mm_setzero_ps(), o0 = e0, e1 = e0, o1 = e0;
    for (int j = 0; j < h.span; j += 2) {
      e0 = _mm_add_ps(e0, _mm_mul_ps(_mm_loadu_ps(w0 + 4 * j), load4(a0 + 4 * j)));
      o0 = _mm_add_ps(o0, _mm_mul_ps(_mm_loadu_ps(w0 + 4 * j + 4), load4(a0 + 4 * j + 4)));
      e1 = _mm_add_ps(e1, _mm_mul_ps(_mm_loadu_ps(w1 + 4 * j), load4(a1 + 4 * j)));
      o1 = _mm_add_ps(o1, _mm_mul_ps(_mm_loadu_ps(w1 + 4 * j + 4), load4(a1 + 4 * j + 4)));
    }
    _mm_store_ps(s, _mm_add_ps(e0, o0));
    _mm_store_ps(s + 4, _mm_add_ps(e1, o1));
    emit_pixel(s[0], s[1], s[2], inv_area, c, out, x);
    emit_pixel(s[4], s[5], s[6], inv_area, c, out, x + 1);
  }
  for (; x < dst_w; ++x) {
    const T* a = acc + 4 * static_cast<std::ptrdiff_t>(h.start[x]);
    const float* w = h.expanded.data() + x * step;
    __m128 e = _mm_setzero_ps(), o = e;
    for (int j = 0; j < h.span; j += 2) {
      e = _mm_add_ps(e, _mm_mul_ps(_mm_loadu_ps(w + 4 * j), load4(a + 4 * j)));
      o = _mm_add_ps(o, _mm_mul_ps(_mm_loadu_ps(w + 4 * j + 4), load4(a + 4 * j + 4)));
    }
    _mm_store_ps(s, _mm_add_ps(e, o));
    emit_pixel(s[0], s[1], s[2], inv_area, c, out, x);
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

// Four pixels -> four gray bytes with OpenCV's fixed-point formula: pmaddwd forms b*B2Y + g*G2Y and
// r*R2Y + a*0 per pixel, a lane swap adds the pair.
inline __m128i gray4(__m128i px) {
  const __m128i zero = _mm_setzero_si128();
  const __m128i coef = _mm_set_epi16(0, kR2Y, kG2Y, kB2Y, 0, kR2Y, kG2Y, kB2Y);
  const __m128i round = _mm_set1_epi32(1 << (kGrayShift - 1));
  auto half = [&](__m128i words) {
    __m128i m = _mm_madd_epi16(words, coef);
    m = _mm_add_epi32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(2, 3, 0, 1)));
    m = _mm_srli_epi32(_mm_add_epi32(m, round), kGrayShift);
    return _mm_shuffle_epi32(m, _MM_SHUFFLE(3, 1, 2, 0));  // pixels in lanes 0, 1
  };
  const __m128i g = _mm_unpacklo_epi64(half(_mm_unpacklo_epi8(px, zero)), half(_mm_unpackhi_epi8(px, zero)));
  const __m128i w = _mm_packs_epi32(g, g);
  return _mm_packus_epi16(w, w);
}

void direct(const std::uint8_t* row, int width, Color c, std::uint8_t* out) {
  int x = 0;
  if (c == Color::Gray) {
    for (; x + 4 <= width; x += 4) {
      const __m128i px = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 4 * x));
      const int v = _mm_cvtsi128_si32(gray4(px));
      std::memcpy(out + x, &v, 4);
    }
    for (; x < width; ++x) out[x] = gray_direct(row[4 * x], row[4 * x + 1], row[4 * x + 2]);
  } else {
    // SSE2 has no byte shuffle; the AVX2 path uses pshufb for this.
    for (; x < width; ++x) {
      out[3 * x + 0] = row[4 * x + 2];
      out[3 * x + 1] = row[4 * x + 1];
      out[3 * x + 2] = row[4 * x + 0];
    }
  }
}

}  // namespace

const IsaKernels& sse2_kernels() {
  static const IsaKernels k{vsum_u16, vsum_i32, hreduce_u16, hreduce_i32, direct};
  return k;
}

}  // namespace engine::kernels
