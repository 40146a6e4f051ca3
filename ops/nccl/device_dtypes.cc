// The device path's dtype rules; plain C++ so the engine and the unit tests use them in every
// build, with or without CUDA.
#include "ops/nccl/device_dtypes.h"

#include "ops/kernels.h"

namespace quorum::ops {
namespace {

bool floating(DataType t) {
  return t == DataType::kF16 || t == DataType::kBF16 || t == DataType::kF32 ||
         t == DataType::kF64;
}

}  // namespace

DataType device_accumulate_dtype(DataType t) { return wire_dtype(t); }  // as on the host

DataType device_wire_dtype_for(DataType t, DataType compression) {
  if (!floating(t)) return t;
  if (compression == DataType::kF16 || compression == DataType::kBF16) return compression;
  return device_accumulate_dtype(t);
}

}  // namespace quorum::ops
