// The device path's dtype rules; plain C++ so the engine and the unit tests use them in every
// build, with or without CUDA.
#include "ops/nccl/device_dtypes.h"

#include "ops/kernels.h"

namespace quorum::ops {

DataType device_accumulate_dtype(DataType t) { return wire_dtype(t); }  // as on the host

// The same rule as on the host.
DataType device_wire_dtype_for(DataType t, DataType compression) {
  return wire_dtype(t, compression);
}

}  // namespace quorum::ops
