// CPU kernels and half-precision conversions: exact reductions for every dtype x op, divide,
// the wire casts, and exhaustive f16/bf16 checks (every bit pattern round-trips; every tie
// between two neighbours rounds to even; overflow gives infinity; subnormals are exact).
#include "ops/kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "ops/half.h"
#include "tests/common/test_data.h"

namespace quorum::ops {
namespace {

using ::quorum::testing::kAllTypes;

std::vector<uint8_t> pack(DataType t, const std::vector<double>& v) {
  std::vector<uint8_t> b(v.size() * dtype_size(t));
  for (size_t i = 0; i < v.size(); ++i) {
    uint8_t* p = b.data() + i * dtype_size(t);
    auto put = [&](auto x) { std::memcpy(p, &x, sizeof(x)); };
    switch (t) {
      case DataType::kF16:
        put(float_to_f16(static_cast<float>(v[i])));
        break;
      case DataType::kBF16:
        put(float_to_bf16(static_cast<float>(v[i])));
        break;
      case DataType::kF32:
        put(static_cast<float>(v[i]));
        break;
      case DataType::kF64:
        put(v[i]);
        break;
      case DataType::kI32:
        put(static_cast<int32_t>(v[i]));
        break;
      case DataType::kI64:
        put(static_cast<int64_t>(v[i]));
        break;
      case DataType::kU8:
        put(static_cast<uint8_t>(v[i]));
        break;
    }
  }
  return b;
}

std::vector<double> unpack(DataType t, const std::vector<uint8_t>& b) {
  std::vector<double> v(b.size() / dtype_size(t));
  for (size_t i = 0; i < v.size(); ++i) {
    const uint8_t* p = b.data() + i * dtype_size(t);
    auto get = [&](auto x) {
      std::memcpy(&x, p, sizeof(x));
      return x;
    };
    switch (t) {
      case DataType::kF16:
        v[i] = f16_to_float(get(uint16_t{}));
        break;
      case DataType::kBF16:
        v[i] = bf16_to_float(get(uint16_t{}));
        break;
      case DataType::kF32:
        v[i] = get(float{});
        break;
      case DataType::kF64:
        v[i] = get(double{});
        break;
      case DataType::kI32:
        v[i] = get(int32_t{});
        break;
      case DataType::kI64:
        v[i] = static_cast<double>(get(int64_t{}));
        break;
      case DataType::kU8:
        v[i] = get(uint8_t{});
        break;
    }
  }
  return v;
}

struct OpCase {
  ReduceOp op;
  std::vector<double> signed_expected, unsigned_expected;
};

TEST(Kernels, ReduceIntoEveryDtypeAndOp) {
  const std::vector<double> sa = {-3, 6, 0, -2, 1}, sb = {5, -4, 1, -2, 7};
  const std::vector<double> ua = {3, 0, 7, 2, 200}, ub = {5, 4, 1, 2, 100};
  const OpCase cases[] = {
      {ReduceOp::kSum, {2, 2, 1, -4, 8}, {8, 4, 8, 4, 44}},      // u8 wraps: 300 -> 44
      {ReduceOp::kAverage, {2, 2, 1, -4, 8}, {8, 4, 8, 4, 44}},  // accumulates as Sum
      {ReduceOp::kMin, {-3, -4, 0, -2, 1}, {3, 0, 1, 2, 100}},
      {ReduceOp::kMax, {5, 6, 1, -2, 7}, {5, 4, 7, 2, 200}},
      {ReduceOp::kProduct, {-15, -24, 0, 4, 7}, {15, 0, 7, 4, 32}},  // 20000 mod 256 = 32
  };
  for (DataType t : kAllTypes) {
    const bool u = t == DataType::kU8;
    for (const OpCase& c : cases) {
      SCOPED_TRACE(std::string(dtype_name(t)) + " " + std::string(op_name(c.op)));
      auto acc = pack(t, u ? ua : sa);
      auto in = pack(t, u ? ub : sb);
      const auto in_before = in;
      reduce_into(acc.data(), in.data(), 5, t, c.op);
      EXPECT_EQ(unpack(t, acc), u ? c.unsigned_expected : c.signed_expected);
      EXPECT_EQ(in, in_before) << "input left alone";
      // count bounds the work: a zero count changes nothing.
      auto untouched = pack(t, u ? ua : sa);
      reduce_into(untouched.data(), in.data(), 0, t, c.op);
      EXPECT_EQ(untouched, pack(t, u ? ua : sa));
    }
  }
}

TEST(Kernels, HalfReductionAcrossChunkBoundaries) {
  for (DataType t : {DataType::kF16, DataType::kBF16}) {
    std::vector<double> a(1000), b(1000, 1.0), expected(1000);
    for (size_t i = 0; i < a.size(); ++i) {
      a[i] = static_cast<double>(i % 50);
      expected[i] = a[i] + 1;
    }
    auto acc = pack(t, a);
    reduce_into(acc.data(), pack(t, b).data(), a.size(), t, ReduceOp::kSum);
    EXPECT_EQ(unpack(t, acc), expected) << dtype_name(t);
  }
}

TEST(Kernels, DivideEveryDtype) {
  for (DataType t : {DataType::kF16, DataType::kBF16, DataType::kF32, DataType::kF64}) {
    auto b = pack(t, {7, -7, 1, 0, 12});
    divide(b.data(), 5, t, 2.0);
    EXPECT_EQ(unpack(t, b), (std::vector<double>{3.5, -3.5, 0.5, 0, 6})) << dtype_name(t);
  }
  for (DataType t : {DataType::kI32, DataType::kI64}) {
    auto b = pack(t, {7, -7, 9, -9, 0});
    divide(b.data(), 5, t, 2.0);
    EXPECT_EQ(unpack(t, b), (std::vector<double>{3, -3, 4, -4, 0})) << dtype_name(t);
    b = pack(t, {8, -8, 2, -2});
    divide(b.data(), 4, t, 3.0);  // truncation toward zero, not floor
    EXPECT_EQ(unpack(t, b), (std::vector<double>{2, -2, 0, 0})) << dtype_name(t);
  }
  auto u = pack(DataType::kU8, {7, 9, 255, 1});
  divide(u.data(), 4, DataType::kU8, 2.0);
  EXPECT_EQ(unpack(DataType::kU8, u), (std::vector<double>{3, 4, 127, 0}));
  // f32 divides (x / n), it does not multiply by a rounded reciprocal.
  std::vector<float> f = {1, 2, 10, 7};
  divide(f.data(), f.size(), DataType::kF32, 3.0);
  EXPECT_EQ(f, (std::vector<float>{1.0f / 3.0f, 2.0f / 3.0f, 10.0f / 3.0f, 7.0f / 3.0f}));
}

TEST(Kernels, WireDtypeAndCasts) {
  EXPECT_EQ(wire_dtype(DataType::kF16), DataType::kF32);
  EXPECT_EQ(wire_dtype(DataType::kBF16), DataType::kF32);
  for (DataType t :
       {DataType::kF32, DataType::kF64, DataType::kI32, DataType::kI64, DataType::kU8}) {
    EXPECT_EQ(wire_dtype(t), t);
  }
  for (DataType half : {DataType::kF16, DataType::kBF16}) {
    SCOPED_TRACE(dtype_name(half));
    std::vector<uint16_t> bits(65536), back(65536);
    for (size_t i = 0; i < bits.size(); ++i) bits[i] = static_cast<uint16_t>(i);
    std::vector<float> wide(65536);
    cast(wide.data(), DataType::kF32, bits.data(), half, bits.size());
    cast(back.data(), half, wide.data(), DataType::kF32, wide.size());
    for (size_t i = 0; i < bits.size(); ++i) {
      float expect = half == DataType::kF16 ? f16_to_float(bits[i]) : bf16_to_float(bits[i]);
      if (std::isnan(expect)) {
        ASSERT_TRUE(std::isnan(wide[i])) << i;
        ASSERT_EQ(back[i] & 0x8000, bits[i] & 0x8000) << i;
      } else {
        ASSERT_EQ(std::bit_cast<uint32_t>(wide[i]), std::bit_cast<uint32_t>(expect)) << i;
        ASSERT_EQ(back[i], bits[i]) << i;
      }
    }
  }
  std::vector<double> d = {1.5, -2, 1e300}, copy(3);
  cast(copy.data(), DataType::kF64, d.data(), DataType::kF64, 3);
  EXPECT_EQ(copy, d);
  cast(d.data(), DataType::kF64, d.data(), DataType::kF64, 3);  // in place: a no-op
  EXPECT_EQ(copy, d);
}

TEST(Kernels, CompressedWireDtypes) {
  for (DataType half : {DataType::kF16, DataType::kBF16}) {
    for (DataType t : {DataType::kF16, DataType::kBF16, DataType::kF32, DataType::kF64}) {
      EXPECT_EQ(wire_dtype(t, half), half) << dtype_name(t);
    }
    for (DataType t : {DataType::kI32, DataType::kI64, DataType::kU8}) {
      EXPECT_EQ(wire_dtype(t, half), t) << dtype_name(t);
    }
  }
  for (DataType t : kAllTypes) EXPECT_EQ(wire_dtype(t, DataType::kF32), wire_dtype(t));
}

TEST(Kernels, CastsBetweenEveryFloatingPair) {
  // 1000 values across chunk boundaries; each cast must equal the rounding through float that
  // half.h defines (f64 goes to a half through f32), and f64 -> f32 the C++ conversion.
  std::mt19937 gen(7);
  std::uniform_real_distribution<double> dist(-70000.0, 70000.0);
  std::vector<double> d(1000);
  for (double& x : d) x = dist(gen);
  d[0] = 0.0;
  d[1] = -0.0;
  d[2] = 1e-7;  // a subnormal in f16
  for (DataType half : {DataType::kF16, DataType::kBF16}) {
    SCOPED_TRACE(dtype_name(half));
    const bool f16 = half == DataType::kF16;
    std::vector<uint16_t> h(d.size());
    cast(h.data(), half, d.data(), DataType::kF64, d.size());
    std::vector<double> back(d.size());
    cast(back.data(), DataType::kF64, h.data(), half, h.size());
    for (size_t i = 0; i < d.size(); ++i) {
      float f = static_cast<float>(d[i]);
      uint16_t want = f16 ? float_to_f16(f) : float_to_bf16(f);
      ASSERT_EQ(h[i], want) << i;
      ASSERT_EQ(back[i], static_cast<double>(f16 ? f16_to_float(want) : bf16_to_float(want)));
    }
    // Half to the other half: through float.
    DataType other = f16 ? DataType::kBF16 : DataType::kF16;
    std::vector<uint16_t> o(h.size());
    cast(o.data(), other, h.data(), half, h.size());
    for (size_t i = 0; i < h.size(); ++i) {
      float v = f16 ? f16_to_float(h[i]) : bf16_to_float(h[i]);
      ASSERT_EQ(o[i], f16 ? float_to_bf16(v) : float_to_f16(v)) << i;
    }
  }
  std::vector<float> f(d.size());
  cast(f.data(), DataType::kF32, d.data(), DataType::kF64, d.size());
  for (size_t i = 0; i < d.size(); ++i) ASSERT_EQ(f[i], static_cast<float>(d[i])) << i;
}

TEST(Kernels, FeedbackResidualIsWhatRoundingTookOff) {
  for (DataType half : {DataType::kF16, DataType::kBF16}) {
    SCOPED_TRACE(dtype_name(half));
    const bool f16 = half == DataType::kF16;
    auto widen = [&](uint16_t b) { return f16 ? f16_to_float(b) : bf16_to_float(b); };
    // One round: dst is (src + residual) rounded, the new residual the difference, in f32.
    // Past the half's range, into its subnormals, a tie, and enough for the 8-wide casts.
    std::vector<float> src = {1.0f / 3.0f, -2.7182817f, 1000.1f, 0.0f, 1e-3f, 7e4f, -6e-8f,
                              1.0f + 0x1p-11f, 3e-6f, 65519.0f, -1e-30f};
    std::vector<float> residual = {0.0f, 1e-4f, -0.05f, 0.25f, 0.0f, 0.0f, 1e-8f,
                                   0.0f, -2e-6f, 0.5f, 0.0f};
    std::vector<uint16_t> dst(src.size());
    std::vector<float> before = residual;
    cast_with_feedback(dst.data(), half, src.data(), DataType::kF32, residual.data(),
                       DataType::kF32, src.size());
    for (size_t i = 0; i < src.size(); ++i) {
      float v = src[i] + before[i];
      ASSERT_EQ(dst[i], f16 ? float_to_f16(v) : float_to_bf16(v)) << i;
      ASSERT_EQ(residual[i], v - widen(dst[i])) << i;
    }
    // Over many rounds of the same gradient the values sent add up to what was given, less the
    // last residual (which stays below half a unit in the last place of the gradient).
    constexpr int kRounds = 1000;
    std::vector<float> g(700), r(700, 0.0f);
    for (size_t i = 0; i < g.size(); ++i) g[i] = 0.1f + static_cast<float>(i) * 1e-3f;
    std::vector<double> sent(g.size(), 0.0);
    std::vector<uint16_t> out(g.size());
    for (int k = 0; k < kRounds; ++k) {
      cast_with_feedback(out.data(), half, g.data(), DataType::kF32, r.data(), DataType::kF32,
                         g.size());
      for (size_t i = 0; i < g.size(); ++i) sent[i] += widen(out[i]);
    }
    for (size_t i = 0; i < g.size(); ++i) {
      const double given = static_cast<double>(g[i]) * kRounds;
      ASSERT_NEAR(sent[i] + r[i], given, given * 1e-5) << i;  // f32 sums' own rounding
      ASSERT_LE(std::abs(r[i]), (f16 ? 0x1p-11 : 0x1p-8)) << i;
    }
  }
  // An f64 tensor keeps its residual in f64.
  std::vector<double> d = {0.1, 1.0 / 3.0};
  std::vector<double> rd = {0.0, 0.0};
  std::vector<uint16_t> h(2);
  cast_with_feedback(h.data(), DataType::kF16, d.data(), DataType::kF64, rd.data(),
                     DataType::kF64, 2);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(rd[i], d[i] - static_cast<double>(f16_to_float(h[i])));
  }
}

// Every f16 bit pattern decodes to the value the IEEE definition gives and encodes back to the
// same bits; NaNs stay NaN with their sign.
TEST(Half, F16EveryBitPatternRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const int exp = (h >> 10) & 0x1f;
    const int mant = h & 0x3ff;
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    const float f = f16_to_float(bits);
    ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << h;
    if (exp == 31 && mant != 0) {
      ASSERT_TRUE(std::isnan(f)) << h;
      ASSERT_TRUE(std::isnan(f16_to_float(float_to_f16(f)))) << h;
      ASSERT_EQ(float_to_f16(f) & 0x8000, h & 0x8000) << h;
      continue;
    }
    double ref = exp == 31  ? sign * INFINITY
                 : exp == 0 ? sign * std::ldexp(mant, -24)
                            : sign * std::ldexp(1024 + mant, exp - 25);
    ASSERT_EQ(static_cast<double>(f), ref) << h;
    ASSERT_EQ(float_to_f16(f), bits) << h;
  }
}

TEST(Half, Bf16EveryBitPatternRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float f = bf16_to_float(bits);
    ASSERT_EQ(std::bit_cast<uint32_t>(f), h << 16) << h;
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(bf16_to_float(float_to_bf16(f)))) << h;  // signalling ones too
      ASSERT_EQ(float_to_bf16(f) & 0x8000, h & 0x8000) << h;
    } else {
      ASSERT_EQ(float_to_bf16(f), bits) << h;
    }
  }
}

// For every pair of neighbouring finite values (and the largest finite value and the next
// power of two, i.e. overflow), the exact midpoint rounds to the even one and the floats just
// below and above it round down and up. Both signs.
TEST(Half, EveryTieRoundsToNearestEven) {
  for (uint16_t h = 0; h <= 0x7bff; ++h) {
    const float lo = f16_to_float(h);
    const float hi = h == 0x7bff ? 65536.0f : f16_to_float(static_cast<uint16_t>(h + 1));
    const float mid = (lo + hi) / 2;  // exact: needs one bit more than f16 has
    const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : h;
    ASSERT_EQ(float_to_f16(mid), even) << h;
    ASSERT_EQ(float_to_f16(-mid), even | 0x8000) << h;
    ASSERT_EQ(float_to_f16(std::nextafter(mid, 0.0f)), h) << h;
    ASSERT_EQ(float_to_f16(std::nextafter(mid, INFINITY)), h + 1) << h;
  }
  for (uint16_t h = 0; h <= 0x7f7f; ++h) {
    const uint32_t mid_bits = (uint32_t{h} << 16) | 0x8000u;  // halfway to the next bf16
    const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : h;
    ASSERT_EQ(float_to_bf16(std::bit_cast<float>(mid_bits)), even) << h;
    ASSERT_EQ(float_to_bf16(std::bit_cast<float>(mid_bits | 0x80000000u)), even | 0x8000) << h;
    ASSERT_EQ(float_to_bf16(std::bit_cast<float>(mid_bits - 1)), h) << h;
    ASSERT_EQ(float_to_bf16(std::bit_cast<float>(mid_bits + 1)), h + 1) << h;
  }
  // The same rule at familiar values.
  EXPECT_EQ(float_to_f16(1.0f + 0x1p-11f), 0x3c00);      // 1 + half an ulp -> 1
  EXPECT_EQ(float_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);  // -> 1 + 2 ulp (even)
  EXPECT_EQ(float_to_bf16(1.0f + 0x1p-8f), 0x3f80);
  EXPECT_EQ(float_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
}

TEST(Half, OverflowBecomesInfinity) {
  EXPECT_EQ(float_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_f16(65519.996f), 0x7bff);
  EXPECT_EQ(float_to_f16(65520.0f), 0x7c00);
  EXPECT_EQ(float_to_f16(1e9f), 0x7c00);
  EXPECT_EQ(float_to_f16(-1e9f), 0xfc00);
  EXPECT_EQ(float_to_f16(FLT_MAX), 0x7c00);
  EXPECT_EQ(float_to_f16(INFINITY), 0x7c00);
  EXPECT_EQ(float_to_f16(-INFINITY), 0xfc00);
  EXPECT_EQ(float_to_bf16(FLT_MAX), 0x7f80);
  EXPECT_EQ(float_to_bf16(-FLT_MAX), 0xff80);
  EXPECT_EQ(float_to_bf16(INFINITY), 0x7f80);
  EXPECT_EQ(float_to_bf16(std::bit_cast<float>(0x7f7f7fffu)), 0x7f7f);
  EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(NAN))));
  EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(std::bit_cast<float>(0x7f800001u)))));
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::bit_cast<float>(0x7f800001u)))));
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::bit_cast<float>(0xff800001u)))));
}

TEST(Half, F16Subnormals) {
  EXPECT_EQ(f16_to_float(0x0001), 0x1p-24f);
  EXPECT_EQ(f16_to_float(0x8001), -0x1p-24f);
  EXPECT_EQ(f16_to_float(0x03ff), 1023 * 0x1p-24f);
  EXPECT_EQ(f16_to_float(0x0400), 0x1p-14f);  // smallest normal
  EXPECT_EQ(float_to_f16(0x1p-24f), 0x0001);
  EXPECT_EQ(float_to_f16(0x1p-25f), 0x0000);  // tie with zero: even
  EXPECT_EQ(float_to_f16(std::nextafter(0x1p-25f, 1.0f)), 0x0001);
  EXPECT_EQ(float_to_f16(1.5f * 0x1p-24f), 0x0002);     // tie between 1 and 2: even
  EXPECT_EQ(float_to_f16(2.5f * 0x1p-24f), 0x0002);     // tie between 2 and 3: even
  EXPECT_EQ(float_to_f16(1023.5f * 0x1p-24f), 0x0400);  // rounds up into the normals
  EXPECT_EQ(float_to_f16(0x1p-26f), 0x0000);
  EXPECT_EQ(float_to_f16(-0x1p-26f), 0x8000);  // signed zero
  EXPECT_EQ(float_to_f16(1e-40f), 0x0000);     // float subnormal
  EXPECT_EQ(float_to_f16(-0.0f), 0x8000);
}

// What "rounds once per call" means and how it is verified:
//  1. One reduce_into call on f16/bf16 widens both operands to float, combines them there and
//     rounds the result to the half type once: for random finite pairs and every op the result
//     equals to_half(to_float(a) op to_float(b)). (For Sum this is also the correctly rounded
//     half sum: float has more than 2*11+2 bits, so rounding through float cannot double-round.)
//  2. Accumulating many values with repeated reduce_into calls on half buffers therefore rounds
//     after every call: 2048 + 1 (x16) stays 2048 in f16, because each 2049 ties back to 2048.
//  3. The engine's wire path (cast to f32, reduce_into in f32, cast back) rounds once in all:
//     the same sixteen additions give exactly 2064.
TEST(Half, ReduceIntoRoundsOncePerCall) {
  std::mt19937 rng(12345);
  for (DataType t : {DataType::kF16, DataType::kBF16}) {
    auto to_f = [t](uint16_t h) {
      return t == DataType::kF16 ? f16_to_float(h) : bf16_to_float(h);
    };
    auto to_h = [t](float f) { return t == DataType::kF16 ? float_to_f16(f) : float_to_bf16(f); };
    std::vector<uint16_t> a, b;
    while (a.size() < 20000) {
      auto x = static_cast<uint16_t>(rng()), y = static_cast<uint16_t>(rng());
      if (std::isfinite(to_f(x)) && std::isfinite(to_f(y))) {
        a.push_back(x);
        b.push_back(y);
      }
    }
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kProduct, ReduceOp::kMin, ReduceOp::kMax}) {
      auto acc = a;
      reduce_into(acc.data(), b.data(), acc.size(), t, op);
      for (size_t i = 0; i < a.size(); ++i) {
        float x = to_f(a[i]), y = to_f(b[i]);
        float r = op == ReduceOp::kSum       ? x + y
                  : op == ReduceOp::kProduct ? x * y
                  : op == ReduceOp::kMin     ? std::min(x, y)
                                             : std::max(x, y);
        ASSERT_EQ(acc[i], to_h(r)) << dtype_name(t) << " " << op_name(op) << " " << i;
      }
    }
  }
  const uint16_t one = float_to_f16(1.0f);
  uint16_t acc = float_to_f16(2048.0f);
  for (int i = 0; i < 16; ++i) reduce_into(&acc, &one, 1, DataType::kF16, ReduceOp::kSum);
  EXPECT_EQ(f16_to_float(acc), 2048.0f) << "each call rounds 2049 to even";
  const uint16_t three = float_to_f16(3.0f);
  acc = float_to_f16(2048.0f);
  reduce_into(&acc, &three, 1, DataType::kF16, ReduceOp::kSum);
  EXPECT_EQ(f16_to_float(acc), 2052.0f) << "2051 ties to 2052 in one rounding";

  uint16_t h = float_to_f16(2048.0f);
  float wide = 0, one_wide = 0;
  cast(&wide, DataType::kF32, &h, DataType::kF16, 1);
  cast(&one_wide, DataType::kF32, &one, DataType::kF16, 1);
  for (int i = 0; i < 16; ++i) reduce_into(&wide, &one_wide, 1, DataType::kF32, ReduceOp::kSum);
  cast(&h, DataType::kF16, &wide, DataType::kF32, 1);
  EXPECT_EQ(f16_to_float(h), 2064.0f);
}

}  // namespace
}  // namespace quorum::ops
