// CPU kernels on raw buffers: elementwise reduction, scaling, and casts between a tensor's dtype
// and the dtype it travels in on the wire. Without compression f16 and bf16 travel as f32, so a
// reduction accumulates in float and rounds once, at unpack. With compression (QUORUM_COMPRESSION)
// every floating dtype travels as f16 or bf16: each combine widens both operands to float, adds
// and rounds once. Pure functions; any thread; buffers must not overlap unless stated.
#pragma once

#include <cstddef>

#include "quorum/types.h"

namespace quorum::ops {

// The dtype a tensor of `t` is reduced in: f32 for f16/bf16, itself otherwise.
DataType wire_dtype(DataType t);

// The dtype a tensor of `t` travels in under `compression` (kF16 or kBF16 compress; anything
// else means none): every floating dtype travels in the compressed dtype, integers as
// themselves, and without compression this is wire_dtype(t).
DataType wire_dtype(DataType t, DataType compression);

// True for f16, bf16, f32 and f64.
bool is_floating(DataType t);

// acc[i] = acc[i] (op) in[i] for i < count, in dtype `t`. Average accumulates as Sum (the
// caller divides once at the end). f16/bf16 inputs are widened, combined and rounded.
void reduce_into(void* acc, const void* in, size_t count, DataType t, ReduceOp op);

// buf[i] /= divisor, in dtype `t` (integers truncate toward zero). For Average.
void divide(void* buf, size_t count, DataType t, double divisor);

// Copies `count` elements of dtype `from` into `to`'s dtype: identity copies, or any pair of
// floating dtypes (rounding to nearest even on the way down). `dst` and `src` may be the same
// pointer only for identity copies.
void cast(void* dst, DataType to, const void* src, DataType from, size_t count);

// Compression with error feedback: v = src[i] + residual[i] (in `residual_t`, the tensor's
// uncompressed wire dtype: f32, or f64 for f64 tensors), dst[i] = v rounded to `to` (f16 or bf16),
// residual[i] = v - dst[i], the part the rounding lost, which joins the next round. `src` is
// `count` elements of `from` (floating).
void cast_with_feedback(void* dst, DataType to, const void* src, DataType from, void* residual,
                        DataType residual_t, size_t count);

}  // namespace quorum::ops
