// The bulk conversions (ops/half_bulk.h), whichever implementation this CPU picks, against the
// scalar ones of ops/half.h, bit for bit, NaNs included.
#include "ops/half_bulk.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <vector>

#include "ops/half.h"

namespace quorum::ops {
namespace {

// Every 16-bit pattern, widened in one call (the length leaves a tail for the scalar loop).
TEST(HalfBulk, WidensEveryPatternAsTheScalarCast) {
  std::vector<uint16_t> h(65536 + 5);
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>(i);
  std::vector<float> f16(h.size()), bf16(h.size());
  f16_to_floats(f16.data(), h.data(), h.size());
  bf16_to_floats(bf16.data(), h.data(), h.size());
  for (size_t i = 0; i < h.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(f16[i]), std::bit_cast<uint32_t>(f16_to_float(h[i])))
        << "f16 0x" << std::hex << h[i] << " (" << half_conversions() << ")";
    ASSERT_EQ(std::bit_cast<uint32_t>(bf16[i]), std::bit_cast<uint32_t>(bf16_to_float(h[i])))
        << "bf16 0x" << std::hex << h[i] << " (" << half_conversions() << ")";
  }
}

// Floats sampled across all 2^32 patterns (every sign, exponent, NaN payload and rounding
// case of the mantissa's low bits), plus each half's ties, narrowed in one call.
TEST(HalfBulk, NarrowsSampledFloatsAsTheScalarCast) {
  std::vector<uint32_t> bits;
  for (uint64_t u = 0; u <= 0xffffffffull; u += 4099) bits.push_back(static_cast<uint32_t>(u));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint32_t f16_tie = std::bit_cast<uint32_t>(f16_to_float(static_cast<uint16_t>(h))) + 0x1000;
    const uint32_t bf16_tie = (h << 16) | 0x8000u;
    for (uint32_t d : {0u, 1u}) {
      bits.push_back(f16_tie - d);
      bits.push_back(bf16_tie - d);
    }
  }
  for (uint32_t special : {0x7f800000u, 0xff800000u, 0x7f800001u, 0x7fc00000u, 0xffffffffu,
                           0x7fbfffffu, 0x477ff000u, 0x477fefffu, 0x33000000u, 0x38800000u}) {
    bits.push_back(special);
  }
  bits.push_back(0x3f800000u);  // an odd count: a tail
  std::vector<float> f(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) f[i] = std::bit_cast<float>(bits[i]);
  std::vector<uint16_t> f16(f.size()), bf16(f.size());
  floats_to_f16(f16.data(), f.data(), f.size());
  floats_to_bf16(bf16.data(), f.data(), f.size());
  for (size_t i = 0; i < f.size(); ++i) {
    ASSERT_EQ(f16[i], float_to_f16(f[i]))
        << "float 0x" << std::hex << bits[i] << " to f16 (" << half_conversions() << ")";
    ASSERT_EQ(bf16[i], float_to_bf16(f[i]))
        << "float 0x" << std::hex << bits[i] << " to bf16 (" << half_conversions() << ")";
  }
}

TEST(HalfBulk, ShortAndEmptyRunsTouchOnlyTheirElements) {
  for (size_t n : {0u, 1u, 7u, 8u, 9u, 15u, 17u}) {
    std::vector<float> f(n + 1, 1.5f), back(n + 1, -7.0f);
    std::vector<uint16_t> h(n + 1, 0xabcd);
    floats_to_f16(h.data(), f.data(), n);
    EXPECT_EQ(h[n], 0xabcd) << n;
    f16_to_floats(back.data(), h.data(), n);
    EXPECT_EQ(back[n], -7.0f) << n;
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(back[i], 1.5f) << n;
  }
}

}  // namespace
}  // namespace quorum::ops
