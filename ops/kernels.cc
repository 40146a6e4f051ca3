#include "ops/kernels.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "ops/half.h"

namespace quorum::ops {
namespace {

template <typename T>
void combine(T* acc, const T* in, size_t n, ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAverage:
      for (size_t i = 0; i < n; ++i) acc[i] = static_cast<T>(acc[i] + in[i]);
      return;
    case ReduceOp::kProduct:
      for (size_t i = 0; i < n; ++i) acc[i] = static_cast<T>(acc[i] * in[i]);
      return;
    case ReduceOp::kMin:
      for (size_t i = 0; i < n; ++i) acc[i] = std::min(acc[i], in[i]);
      return;
    case ReduceOp::kMax:
      for (size_t i = 0; i < n; ++i) acc[i] = std::max(acc[i], in[i]);
      return;
  }
}

template <float (*ToFloat)(uint16_t), uint16_t (*FromFloat)(float)>
void combine_half(uint16_t* acc, const uint16_t* in, size_t n, ReduceOp op) {
  // Chunked so the float scratch stays in L1.
  constexpr size_t kChunk = 256;
  float a[kChunk], b[kChunk];
  for (size_t base = 0; base < n; base += kChunk) {
    size_t m = std::min(kChunk, n - base);
    for (size_t i = 0; i < m; ++i) {
      a[i] = ToFloat(acc[base + i]);
      b[i] = ToFloat(in[base + i]);
    }
    combine(a, b, m, op);
    for (size_t i = 0; i < m; ++i) acc[base + i] = FromFloat(a[i]);
  }
}

template <typename T>
void divide_typed(T* buf, size_t n, double divisor) {
  for (size_t i = 0; i < n; ++i) buf[i] = static_cast<T>(buf[i] / divisor);
}

}  // namespace

DataType wire_dtype(DataType t) {
  return (t == DataType::kF16 || t == DataType::kBF16) ? DataType::kF32 : t;
}

void reduce_into(void* acc, const void* in, size_t count, DataType t, ReduceOp op) {
  switch (t) {
    case DataType::kF16:
      return combine_half<f16_to_float, float_to_f16>(static_cast<uint16_t*>(acc),
                                                       static_cast<const uint16_t*>(in), count, op);
    case DataType::kBF16:
      return combine_half<bf16_to_float, float_to_bf16>(
          static_cast<uint16_t*>(acc), static_cast<const uint16_t*>(in), count, op);
    case DataType::kF32:
      return combine(static_cast<float*>(acc), static_cast<const float*>(in), count, op);
    case DataType::kF64:
      return combine(static_cast<double*>(acc), static_cast<const double*>(in), count, op);
    case DataType::kI32:
      return combine(static_cast<int32_t*>(acc), static_cast<const int32_t*>(in), count, op);
    case DataType::kI64:
      return combine(static_cast<int64_t*>(acc), static_cast<const int64_t*>(in), count, op);
    case DataType::kU8:
      return combine(static_cast<uint8_t*>(acc), static_cast<const uint8_t*>(in), count, op);
  }
}

void divide(void* buf, size_t count, DataType t, double divisor) {
  switch (t) {
    case DataType::kF32: {
      // A true divide, not a reciprocal multiply: Average must match x / n exactly.
      float* p = static_cast<float*>(buf);
      float d = static_cast<float>(divisor);
      for (size_t i = 0; i < count; ++i) p[i] /= d;
      return;
    }
    case DataType::kF64: return divide_typed(static_cast<double*>(buf), count, divisor);
    case DataType::kI32: return divide_typed(static_cast<int32_t*>(buf), count, divisor);
    case DataType::kI64: {
      auto* p = static_cast<int64_t*>(buf);
      auto d = static_cast<int64_t>(divisor);
      for (size_t i = 0; i < count; ++i) p[i] /= d;
      return;
    }
    case DataType::kU8: return divide_typed(static_cast<uint8_t*>(buf), count, divisor);
    case DataType::kF16:
    case DataType::kBF16: {
      // Not a wire dtype; handled for completeness through float.
      auto* p = static_cast<uint16_t*>(buf);
      bool f16 = t == DataType::kF16;
      for (size_t i = 0; i < count; ++i) {
        float v = (f16 ? f16_to_float(p[i]) : bf16_to_float(p[i])) / static_cast<float>(divisor);
        p[i] = f16 ? float_to_f16(v) : float_to_bf16(v);
      }
      return;
    }
  }
}

void cast(void* dst, DataType to, const void* src, DataType from, size_t count) {
  if (to == from) {
    if (dst != src) std::memcpy(dst, src, count * dtype_size(to));
    return;
  }
  if (to == DataType::kF32 && (from == DataType::kF16 || from == DataType::kBF16)) {
    auto* d = static_cast<float*>(dst);
    auto* s = static_cast<const uint16_t*>(src);
    if (from == DataType::kF16) {
      for (size_t i = 0; i < count; ++i) d[i] = f16_to_float(s[i]);
    } else {
      for (size_t i = 0; i < count; ++i) d[i] = bf16_to_float(s[i]);
    }
    return;
  }
  if (from == DataType::kF32 && (to == DataType::kF16 || to == DataType::kBF16)) {
    auto* d = static_cast<uint16_t*>(dst);
    auto* s = static_cast<const float*>(src);
    if (to == DataType::kF16) {
      for (size_t i = 0; i < count; ++i) d[i] = float_to_f16(s[i]);
    } else {
      for (size_t i = 0; i < count; ++i) d[i] = float_to_bf16(s[i]);
    }
    return;
  }
  std::abort();  // Programmer error: the wire casts above are the only ones the engine issues.
}

}  // namespace quorum::ops
