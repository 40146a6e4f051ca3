// The dtype rules of the device (NCCL) path, shared by the engine, the kernels' callers and the
// unit tests; plain C++, present in every build. Pure functions, any thread.
#pragma once

#include "quorum/types.h"

namespace quorum::ops {

// The dtype late gradients (carries) accumulate in: f32 for f16/bf16, the dtype otherwise.
DataType device_accumulate_dtype(DataType t);

// The dtype a tensor of `t` travels in on the device path. `compression` is kF32 for none
// (floating tensors travel in their accumulate dtype, so f16/bf16 sum in float, as on MPI), or
// kF16/kBF16 (QUORUM_COMPRESSION): every floating dtype then travels in it. Integer tensors
// always travel as themselves.
DataType device_wire_dtype_for(DataType t, DataType compression);

}  // namespace quorum::ops
