// AVX2 path: 256-bit vertical accumulation (the pass that reads every source byte), horizontal
// reduction two taps per register, and a pshufb BGRA->RGB; same-size gray reuses the SSE2 code. Compiled with -mavx2 only (no -mfma: contraction would change the rounding).
// Selected at run time when the CPU reports AVX2 (convert_resize.cpp).
#include <immintrin.h>

#include <cstring>

#include "kernels/kernel_isa.hpp"

namespace engine::kernels {
namespace {

void vsum_u16(const std::uint8_t* const* rows, int count, std::uint16_t* acc, std::size_t n) {
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i lo = _mm256_setzero_si256(), hi = lo;
    for (int j = 0; j < count; ++j) {
      const __m128i* r = reinterpret_cast<const __m128i*>(rows[j] + i);
      lo = _mm256_add_epi16(lo, _mm256_cvtepu8_epi16(_mm_loadu_si128(r)));
      hi = _mm256_add_epi16(hi, _mm256_cvtepu8_epi16(_mm_loadu_si128(r + 1)));
    }
    auto* a = reinterpret_cast<__m256i*>(acc + i);
    _mm256_storeu_si256(a, lo);
    _mm256_storeu_si256(a + 1, hi);
  }
  for (; i < n; ++i) {
    unsigned s = 0;
    for (int j = 0; j < count; ++j) s += rows[j][i];
    acc[i] = static_cast<std::uint16_t>(s);
  }
}

// As the SSE2 version, 32 bytes per step. unpack*_epi16 work within 128-bit lanes, so the four
// results hold bytes {0-3, 16-19}, {4-7, 20-23}, ...; permute2x128 restores memory order.
void vsum_i32(const std::uint8_t* const* rows, const std::int16_t* w, int count, std::int32_t* acc,
              std::size_t n) {
  const __m256i zero = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    for (int j = 0; j < count; j += 2) {
      const bool pair = j + 1 < count;
      const __m256i ra = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[j] + i));
      const __m256i rb = pair ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[j + 1] + i)) : zero;
      const __m256i wab = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint16_t>(w[j])) |
                                            (pair ? static_cast<int>(w[j + 1]) << 16 : 0));
      const __m256i alo = _mm256_unpacklo_epi8(ra, zero), ahi = _mm256_unpackhi_epi8(ra, zero);
      const __m256i blo = _mm256_unpacklo_epi8(rb, zero), bhi = _mm256_unpackhi_epi8(rb, zero);
      s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_unpacklo_epi16(alo, blo), wab));
      s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_unpackhi_epi16(alo, blo), wab));
      s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(_mm256_unpacklo_epi16(ahi, bhi), wab));
      s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(_mm256_unpackhi_epi16(ahi, bhi), wab));
    }
    // s0: bytes 0-3 | 16-19, s1: 4-7 | 20-23, s2: 8-11 | 24-27, s3: 12-15 | 28-31.
    auto* a = reinterpret_cast<__m256i*>(acc + i);
    _mm256_storeu_si256(a, _mm256_permute2x128_si256(s0, s1, 0x20));
    _mm256_storeu_si256(a + 1, _mm256_permute2x128_si256(s2, s3, 0x20));
    _mm256_storeu_si256(a + 2, _mm256_permute2x128_si256(s0, s1, 0x31));
    _mm256_storeu_si256(a + 3, _mm256_permute2x128_si256(s2, s3, 0x31));
  }
  for (; i < n; ++i) {
    std::int32_t s = 0;
    for (int j = 0; j < count; ++j) s += w[j] * rows[j][i];
    acc[i] = s;
  }
}

inline __m256 load8(const std::uint16_t* a) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))));
}
inline __m256 load8(const std::int32_t* a) {
  return _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a)));
}
inline __m128 fold(__m256 v) { return _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)); }

// Gray of four pixels from their BGRA sums, the operations of gray_from_sums in the same order per lane:
// ((b*kB + g*kG) + r*kR) * inv_area, + 0.5, truncate; the two saturating packs clamp to 0..255.
inline void gray4(__m128 p0, __m128 p1, __m128 p2, __m128 p3, float inv_area, std::uint8_t* out) {
  _MM_TRANSPOSE4_PS(p0, p1, p2, p3);  // p0 = four b sums, p1 = g, p2 = r
  const __m128 g = _mm_mul_ps(
      _mm_add_ps(_mm_add_ps(_mm_mul_ps(p0, _mm_set1_ps(kB2Yf)), _mm_mul_ps(p1, _mm_set1_ps(kG2Yf))),
                 _mm_mul_ps(p2, _mm_set1_ps(kR2Yf))),
      _mm_set1_ps(inv_area));
  const __m128i v = _mm_cvttps_epi32(_mm_add_ps(g, _mm_set1_ps(0.5f)));
  const __m128i w = _mm_packs_epi32(v, v);
  const int bytes = _mm_cvtsi128_si32(_mm_packus_epi16(w, w));
  std::memcpy(out, &bytes, 4);
}

// Two adjacent taps per 256-bit register: the low half accumulates even taps and the high half odd
// taps (the canonical order), folded at the end; four output pixels in lockstep so the add chains
// are independent.
template <typename T>
void hreduce(const T* acc, const AxisTable& h, int dst_w, float inv_area, Color c, std::uint8_t* out) {
  alignas(16) float s[16];
  const std::ptrdiff_t step = static_cast<std::ptrdiff_t>(h.span) * 4;
  int x = 0;
  for (; x + 4 <= dst_w; x += 4) {
    const T* a0 = acc + 4 * static_cast<std::ptrdiff_t>(h.start[x]);
    const T* a1 = acc + 4 * static_cast<std::ptrdiff_t>(h.start[x + 1]);
    const T* a2 = acc + 4 * static_cast<std::ptrdiff_t>(h.start[x + 2]);
    const T* a3 = acc + 4 * static_cast<std::ptrdiff_t>(h.start[x + 3]);
    const float* w = h.expanded.data() + x * step;
    __m256 v0 = _mm256_setzero_ps(), v1 = v0, v2 = v0, v3 = v0;
    for (int j = 0; j < h.span; j += 2) {
      v0 = _mm256_add_ps(v0, _mm256_mul_ps(_mm256_loadu_ps(w + 4 * j), load8(a0 + 4 * j)));
      v1 = _mm256_add_ps(v1, _mm256_mul_ps(_mm256_loadu_ps(w + step + 4 * j), load8(a1 + 4 * j)));
      v2 = _mm256_add_ps(v2, _mm256_mul_ps(_mm256_loadu_ps(w + 2 * step + 4 * j), load8(a2 + 4 * j)));
      v3 = _mm256_add_ps(v3, _mm256_mul_ps(_mm256_loadu_ps(w + 3 * step + 4 * j), load8(a3 + 4 * j)));
    }
    if (c == Color::Gray) {
      gray4(fold(v0), fold(v1), fold(v2), fold(v3), inv_area, out + x);
      continue;
    }
    _mm_store_ps(s, fold(v0));
    _mm_store_ps(s + 4, fold(v1));
    _mm_store_ps(s + 8, fold(v2));
    _mm_store_ps(s + 12, fold(v3));
    for (int k = 0; k < 4; ++k) emit_pixel(s[4 * k], s[4 * k + 1], s[4 * k + 2], inv_area, c, out, x + k);
  }
  for (; x < dst_w; ++x) {
    const T* a = acc + 4 * static_cast<std::ptrdiff_t>(h.start[x]);
    const float* w = h.expanded.data() + x * step;
    __m256 v = _mm256_setzero_ps();
    for (int j = 0; j < h.span; j += 2) v = _mm256_add_ps(v, _mm256_mul_ps(_mm256_loadu_ps(w + 4 * j), load8(a + 4 * j)));
    _mm_store_ps(s, fold(v));
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

void direct(const std::uint8_t* row, int width, Color c, std::uint8_t* out) {
  if (c == Color::Gray) {
    sse2_kernels().direct(row, width, c, out);
    return;
  }
  const __m128i shuf = _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
  int x = 0;
  for (; x + 4 <= width; x += 4) {
    const __m128i v = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 4 * x)), shuf);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + 3 * x), v);
    const int tail = _mm_cvtsi128_si32(_mm_srli_si128(v, 8));
    std::memcpy(out + 3 * x + 8, &tail, 4);
  }
  for (; x < width; ++x) {
    out[3 * x + 0] = row[4 * x + 2];
    out[3 * x + 1] = row[4 * x + 1];
    out[3 * x + 2] = row[4 * x + 0];
  }
}

}  // namespace

const IsaKernels& avx2_kernels() {
  static const IsaKernels k = [] {
    IsaKernels t = sse2_kernels();
    t.vsum_u16 = vsum_u16;
    t.vsum_i32 = vsum_i32;
    t.hreduce_u16 = hreduce_u16;
    t.hreduce_i32 = hreduce_i32;
    t.direct = direct;
    return t;
  }();
  return k;
}

}  // namespace engine::kernels
