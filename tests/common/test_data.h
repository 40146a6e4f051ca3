// Verifiable data for tests and benchmarks: element i of rank r under seed s is a small integer
// chosen from (s, r, i), exactly representable in every dtype, so every rank can compute the
// exact expected result of any reduction, floats included.
#pragma once

#include <cstdint>
#include <cstring>
#include <iterator>
#include <vector>

#include "ops/half.h"
#include "quorum/types.h"

namespace quorum::testing {

// Every dtype, for tests that run a case per dtype.
inline constexpr DataType kAllTypes[] = {DataType::kF16, DataType::kBF16, DataType::kF32,
                                         DataType::kF64, DataType::kI32,  DataType::kI64,
                                         DataType::kU8};
static_assert(std::size(kAllTypes) == kNumDataTypes);

inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Unsigned types get 0..4, the others -5..5.
inline int64_t value(uint64_t seed, int rank, size_t index, DataType t) {
  uint64_t h = mix(seed * 1000003u + static_cast<uint64_t>(rank) * 7919u + index);
  return t == DataType::kU8 ? static_cast<int64_t>(h % 5) : static_cast<int64_t>(h % 11) - 5;
}

// Writes `v` into element `i` of a buffer of dtype `t`.
inline void store(void* buf, size_t i, DataType t, double v) {
  auto* b = static_cast<unsigned char*>(buf);
  switch (t) {
    case DataType::kF16: {
      uint16_t h = ops::float_to_f16(static_cast<float>(v));
      std::memcpy(b + 2 * i, &h, 2);
      break;
    }
    case DataType::kBF16: {
      uint16_t h = ops::float_to_bf16(static_cast<float>(v));
      std::memcpy(b + 2 * i, &h, 2);
      break;
    }
    case DataType::kF32: {
      float f = static_cast<float>(v);
      std::memcpy(b + 4 * i, &f, 4);
      break;
    }
    case DataType::kF64: std::memcpy(b + 8 * i, &v, 8); break;
    case DataType::kI32: {
      auto x = static_cast<int32_t>(v);
      std::memcpy(b + 4 * i, &x, 4);
      break;
    }
    case DataType::kI64: {
      auto x = static_cast<int64_t>(v);
      std::memcpy(b + 8 * i, &x, 8);
      break;
    }
    case DataType::kU8: b[i] = static_cast<uint8_t>(static_cast<int64_t>(v) & 0xff); break;
  }
}

inline std::vector<unsigned char> make_input(uint64_t seed, int rank, size_t n, DataType t) {
  std::vector<unsigned char> buf(n * dtype_size(t) + 1);
  for (size_t i = 0; i < n; ++i) store(buf.data(), i, t, static_cast<double>(value(seed, rank, i, t)));
  return buf;
}

// The exact result of reducing every rank's input with `op`, as bytes of dtype `t`.
inline std::vector<unsigned char> expected_allreduce(uint64_t seed, int size, size_t n, DataType t,
                                                     ReduceOp op) {
  std::vector<unsigned char> buf(n * dtype_size(t) + 1);
  const bool floating = t == DataType::kF16 || t == DataType::kBF16 || t == DataType::kF32 ||
                        t == DataType::kF64;
  for (size_t i = 0; i < n; ++i) {
    // Floats are combined as doubles (exact for these small integers, and -0.0 from a product
    // with zero keeps its sign as it does in the runtime); integers as integers.
    int64_t acc = value(seed, 0, i, t);
    double facc = static_cast<double>(acc);
    for (int r = 1; r < size; ++r) {
      int64_t v = value(seed, r, i, t);
      double fv = static_cast<double>(v);
      switch (op) {
        case ReduceOp::kSum:
        case ReduceOp::kAverage: acc += v; facc += fv; break;
        case ReduceOp::kProduct: acc *= v; facc *= fv; break;
        case ReduceOp::kMin: acc = v < acc ? v : acc; facc = fv < facc ? fv : facc; break;
        case ReduceOp::kMax: acc = v > acc ? v : acc; facc = fv > facc ? fv : facc; break;
      }
      if (t == DataType::kU8) acc &= 0xff;  // u8 arithmetic wraps at every step
    }
    double out = floating ? facc : static_cast<double>(acc);
    if (op == ReduceOp::kAverage) {
      switch (t) {
        case DataType::kF64: out = facc / size; break;
        case DataType::kF32:
        case DataType::kF16:
        case DataType::kBF16:  // accumulated and divided in float, rounded once
          out = static_cast<double>(static_cast<float>(facc) / static_cast<float>(size));
          break;
        default: out = static_cast<double>(acc / size); break;  // truncates toward zero
      }
    }
    store(buf.data(), i, t, out);
  }
  return buf;
}

}  // namespace quorum::testing
