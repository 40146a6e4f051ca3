// CPU kernels on raw buffers: elementwise reduction, scaling, and casts between a tensor's dtype
// and the dtype it travels in on the wire. f16 and bf16 travel as f32 so a reduction accumulates
// in float and rounds once, at unpack. Pure functions; any thread; buffers must not overlap
// unless stated.
#pragma once

#include <cstddef>

#include "quorum/types.h"

namespace quorum::ops {

// The dtype a tensor of `t` is reduced in: f32 for f16/bf16, itself otherwise.
DataType wire_dtype(DataType t);

// acc[i] = acc[i] (op) in[i] for i < count, in dtype `t`. Average accumulates as Sum (the
// caller divides once at the end). f16/bf16 inputs are widened, combined and rounded.
void reduce_into(void* acc, const void* in, size_t count, DataType t, ReduceOp op);

// buf[i] /= divisor, in dtype `t` (integers truncate toward zero). For Average.
void divide(void* buf, size_t count, DataType t, double divisor);

// Copies `count` elements of dtype `from` into `to`'s dtype. Only identity copies and
// f16/bf16 <-> f32 are supported (the wire casts). `dst` and `src` may be the same pointer only
// for identity copies.
void cast(void* dst, DataType to, const void* src, DataType from, size_t count);

}  // namespace quorum::ops
