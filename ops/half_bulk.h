// Bulk conversions between float and IEEE binary16 / bfloat16, bit for bit the scalar ones of
// ops/half.h (round-to-nearest-even, NaN stays NaN with its sign). On x86-64 CPUs with F16C
// (binary16) or AVX2 (bfloat16) they run 8 elements per instruction, chosen once at run time;
// elsewhere they are the scalar loops. Any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace quorum::ops {

void floats_to_f16(uint16_t* dst, const float* src, size_t n);
void f16_to_floats(float* dst, const uint16_t* src, size_t n);
void floats_to_bf16(uint16_t* dst, const float* src, size_t n);
void bf16_to_floats(float* dst, const uint16_t* src, size_t n);

// Which implementation the calls above use on this CPU: "f16c+avx2", "f16c", "avx2" or
// "scalar" (for logs and benchmarks).
const char* half_conversions();

}  // namespace quorum::ops
