#include "ops/kernels.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "ops/half.h"
#include "ops/half_bulk.h"

namespace quorum::ops {
namespace {

// Elements per step of the kernels that widen through a scratch array, which then stays in L1.
constexpr size_t kChunk = 256;

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

// The bulk conversions of one half dtype (ops/half_bulk.h).
struct HalfCasts {
  void (*widen)(float*, const uint16_t*, size_t);
  void (*narrow)(uint16_t*, const float*, size_t);
};
constexpr HalfCasts casts_of(DataType half) {
  return half == DataType::kF16 ? HalfCasts{f16_to_floats, floats_to_f16}
                                : HalfCasts{bf16_to_floats, floats_to_bf16};
}

void combine_half(uint16_t* acc, const uint16_t* in, size_t n, ReduceOp op, HalfCasts c) {
  float a[kChunk], b[kChunk];
  for (size_t base = 0; base < n; base += kChunk) {
    size_t m = std::min(kChunk, n - base);
    c.widen(a, acc + base, m);
    c.widen(b, in + base, m);
    combine(a, b, m, op);
    c.narrow(acc + base, a, m);
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
    case DataType::kBF16:
      return combine_half(static_cast<uint16_t*>(acc), static_cast<const uint16_t*>(in), count, op,
                          casts_of(t));
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
      // A wire dtype under compression: through float, rounded once.
      auto* p = static_cast<uint16_t*>(buf);
      const HalfCasts c = casts_of(t);
      const float d = static_cast<float>(divisor);
      float v[kChunk];
      for (size_t base = 0; base < count; base += kChunk) {
        const size_t m = std::min(kChunk, count - base);
        c.widen(v, p + base, m);
        for (size_t i = 0; i < m; ++i) v[i] /= d;
        c.narrow(p + base, v, m);
      }
      return;
    }
  }
}

namespace {

// Elements [base, base + m) of a floating buffer of dtype `t`, widened to double (exact).
void load_chunk(const void* src, DataType t, size_t base, size_t m, double* out) {
  switch (t) {
    case DataType::kF16: {
      auto* s = static_cast<const uint16_t*>(src) + base;
      for (size_t i = 0; i < m; ++i) out[i] = f16_to_float(s[i]);
      return;
    }
    case DataType::kBF16: {
      auto* s = static_cast<const uint16_t*>(src) + base;
      for (size_t i = 0; i < m; ++i) out[i] = bf16_to_float(s[i]);
      return;
    }
    case DataType::kF32: {
      auto* s = static_cast<const float*>(src) + base;
      for (size_t i = 0; i < m; ++i) out[i] = s[i];
      return;
    }
    case DataType::kF64: std::memcpy(out, static_cast<const double*>(src) + base, m * 8); return;
    default: std::abort();  // programmer error: only floating dtypes are cast
  }
}

// Rounds `in` into elements [base, base + m) of `dst` (dtype `t`). Halves round through f32.
void store_chunk(const double* in, void* dst, DataType t, size_t base, size_t m) {
  switch (t) {
    case DataType::kF16: {
      auto* d = static_cast<uint16_t*>(dst) + base;
      for (size_t i = 0; i < m; ++i) d[i] = float_to_f16(static_cast<float>(in[i]));
      return;
    }
    case DataType::kBF16: {
      auto* d = static_cast<uint16_t*>(dst) + base;
      for (size_t i = 0; i < m; ++i) d[i] = float_to_bf16(static_cast<float>(in[i]));
      return;
    }
    case DataType::kF32: {
      auto* d = static_cast<float*>(dst) + base;
      for (size_t i = 0; i < m; ++i) d[i] = static_cast<float>(in[i]);
      return;
    }
    case DataType::kF64: std::memcpy(static_cast<double*>(dst) + base, in, m * 8); return;
    default: std::abort();
  }
}

// The two casts every fused f16/bf16 tensor takes (f32 <-> half), in bulk (ops/half_bulk.h).
bool cast_f32_half(void* dst, DataType to, const void* src, DataType from, size_t count) {
  if (to == DataType::kF32 && (from == DataType::kF16 || from == DataType::kBF16)) {
    casts_of(from).widen(static_cast<float*>(dst), static_cast<const uint16_t*>(src), count);
    return true;
  }
  if (from == DataType::kF32 && (to == DataType::kF16 || to == DataType::kBF16)) {
    casts_of(to).narrow(static_cast<uint16_t*>(dst), static_cast<const float*>(src), count);
    return true;
  }
  return false;
}

}  // namespace

bool is_floating(DataType t) {
  return t == DataType::kF16 || t == DataType::kBF16 || t == DataType::kF32 ||
         t == DataType::kF64;
}

DataType wire_dtype(DataType t, DataType compression) {
  const bool compress = compression == DataType::kF16 || compression == DataType::kBF16;
  return compress && is_floating(t) ? compression : wire_dtype(t);
}

void cast(void* dst, DataType to, const void* src, DataType from, size_t count) {
  if (to == from) {
    if (dst != src) std::memcpy(dst, src, count * dtype_size(to));
    return;
  }
  if (cast_f32_half(dst, to, src, from, count)) return;
  if (!is_floating(to) || !is_floating(from)) std::abort();  // programmer error
  double tmp[kChunk];
  for (size_t base = 0; base < count; base += kChunk) {
    size_t m = std::min(kChunk, count - base);
    load_chunk(src, from, base, m, tmp);
    store_chunk(tmp, dst, to, base, m);
  }
}

namespace {

// cast_with_feedback for f32 tensors, the common case, in f32 with bulk casts. Bit for bit the
// general path's figures: a sum of two floats rounded once (double has more than 2 x 24 + 2
// bits, so rounding through it changes nothing), and v - sent exact in float (the bits of v
// below the half's precision).
void feedback_f32(uint16_t* dst, HalfCasts c, const float* src, float* residual, size_t count) {
  float v[kChunk], sent[kChunk];
  for (size_t base = 0; base < count; base += kChunk) {
    const size_t m = std::min(kChunk, count - base);
    for (size_t i = 0; i < m; ++i) v[i] = src[base + i] + residual[base + i];
    c.narrow(dst + base, v, m);
    c.widen(sent, dst + base, m);
    for (size_t i = 0; i < m; ++i) residual[base + i] = v[i] - sent[i];
  }
}

}  // namespace

void cast_with_feedback(void* dst, DataType to, const void* src, DataType from, void* residual,
                        DataType residual_t, size_t count) {
  if (from == DataType::kF32 && residual_t == DataType::kF32 &&
      (to == DataType::kF16 || to == DataType::kBF16)) {
    return feedback_f32(static_cast<uint16_t*>(dst), casts_of(to),
                        static_cast<const float*>(src), static_cast<float*>(residual), count);
  }
  double v[kChunk], r[kChunk], sent[kChunk];
  for (size_t base = 0; base < count; base += kChunk) {
    size_t m = std::min(kChunk, count - base);
    load_chunk(src, from, base, m, v);
    load_chunk(residual, residual_t, base, m, r);
    for (size_t i = 0; i < m; ++i) v[i] += r[i];
    // The sum in the residual's precision, as a framework adding the residual itself would.
    if (residual_t == DataType::kF32) {
      for (size_t i = 0; i < m; ++i) v[i] = static_cast<float>(v[i]);
    }
    store_chunk(v, dst, to, base, m);
    load_chunk(dst, to, base, m, sent);
    for (size_t i = 0; i < m; ++i) r[i] = v[i] - sent[i];
    store_chunk(r, residual, residual_t, base, m);
  }
}

}  // namespace quorum::ops
