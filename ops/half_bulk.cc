#include "ops/half_bulk.h"

#include "ops/half.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define QUORUM_HALF_SIMD 1
#endif

namespace quorum::ops {
namespace {

void scalar_to_f16(uint16_t* d, const float* s, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = float_to_f16(s[i]);
}
void scalar_from_f16(float* d, const uint16_t* s, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = f16_to_float(s[i]);
}
void scalar_to_bf16(uint16_t* d, const float* s, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = float_to_bf16(s[i]);
}
void scalar_from_bf16(float* d, const uint16_t* s, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = bf16_to_float(s[i]);
}

struct Table {
  void (*to_f16)(uint16_t*, const float*, size_t) = scalar_to_f16;
  void (*from_f16)(float*, const uint16_t*, size_t) = scalar_from_f16;
  void (*to_bf16)(uint16_t*, const float*, size_t) = scalar_to_bf16;
  void (*from_bf16)(float*, const uint16_t*, size_t) = scalar_from_bf16;
  const char* name = "scalar";
};

#ifdef QUORUM_HALF_SIMD

__attribute__((target("avx,f16c"))) void f16c_to_f16(uint16_t* d, const float* s, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), h);
  }
  scalar_to_f16(d + i, s + i, n - i);
}

__attribute__((target("avx,f16c"))) void f16c_from_f16(float* d, const uint16_t* s, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(h));
  }
  scalar_from_f16(d + i, s + i, n - i);
}

// float_to_bf16 on 8 lanes: add 0x7fff plus the kept part's lowest bit, keep the top half; a
// NaN keeps its top half with the quiet bit set.
__attribute__((target("avx2"))) void avx2_to_bf16(uint16_t* d, const float* s, size_t n) {
  const __m256i low_bit = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
  const __m256i quiet = _mm256_set1_epi32(0x0040);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(s + i));
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), low_bit);
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(bias, odd)), 16);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
    const __m256i quieted = _mm256_or_si256(_mm256_srli_epi32(u, 16), quiet);
    const __m256i r = _mm256_blendv_epi8(rounded, quieted, nan);
    // 32-bit lanes (each at most 0xffff) to 16-bit: pack within 128-bit halves, then order.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), _mm256_castsi256_si128(packed));
  }
  scalar_to_bf16(d + i, s + i, n - i);
}

__attribute__((target("avx2"))) void avx2_from_bf16(float* d, const uint16_t* s, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    const __m256i u = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
    _mm256_storeu_ps(d + i, _mm256_castsi256_ps(u));
  }
  scalar_from_bf16(d + i, s + i, n - i);
}

Table make_table() {
  Table t;
  __builtin_cpu_init();
  const bool f16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  const bool avx2 = __builtin_cpu_supports("avx2");
  if (f16c) {
    t.to_f16 = f16c_to_f16;
    t.from_f16 = f16c_from_f16;
  }
  if (avx2) {
    t.to_bf16 = avx2_to_bf16;
    t.from_bf16 = avx2_from_bf16;
  }
  t.name = f16c && avx2 ? "f16c+avx2" : f16c ? "f16c" : avx2 ? "avx2" : "scalar";
  return t;
}

#else

Table make_table() { return {}; }

#endif

const Table& table() {
  static const Table t = make_table();
  return t;
}

}  // namespace

void floats_to_f16(uint16_t* dst, const float* src, size_t n) { table().to_f16(dst, src, n); }
void f16_to_floats(float* dst, const uint16_t* src, size_t n) { table().from_f16(dst, src, n); }
void floats_to_bf16(uint16_t* dst, const float* src, size_t n) { table().to_bf16(dst, src, n); }
void bf16_to_floats(float* dst, const uint16_t* src, size_t n) { table().from_bf16(dst, src, n); }
const char* half_conversions() { return table().name; }

}  // namespace quorum::ops
