// The NCCL backend's shared helpers (nccl_common.h): CUDA and NCCL results as Status values, and
// the dtype and op mappings.
#include "ops/nccl/nccl_common.h"

namespace quorum::ops::nccl {

std::string where(int ordinal) { return "cuda:" + std::to_string(ordinal); }

Status cuda_status(cudaError_t err, const std::string& what) {
  if (err == cudaSuccess) return Status::ok();
  return Status(StatusCode::kInternal,
                what + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

Status nccl_error(ncclResult_t r, ncclComm_t comm, const std::string& what) {
  std::string detail = comm ? ncclGetLastError(comm) : "";
  return Status(StatusCode::kInternal, what + ": " + ncclGetErrorString(r) +
                                           (detail.empty() ? "" : " (" + detail + ")"));
}

Status nccl_status(ncclResult_t r, ncclComm_t comm, const std::string& what) {
  if (r == ncclSuccess || r == ncclInProgress) return Status::ok();
  return nccl_error(r, comm, what);
}

ncclResult_t async_state(ncclComm_t comm) {
  ncclResult_t state = ncclInProgress;
  ncclResult_t r = ncclCommGetAsyncError(comm, &state);
  return r != ncclSuccess ? r : state;
}

ncclDataType_t nccl_type(DataType t) {
  switch (t) {
    case DataType::kF16: return ncclFloat16;
    case DataType::kBF16: return ncclBfloat16;
    case DataType::kF32: return ncclFloat32;
    case DataType::kF64: return ncclFloat64;
    case DataType::kI32: return ncclInt32;
    case DataType::kI64: return ncclInt64;
    case DataType::kU8: return ncclUint8;
  }
  return ncclUint8;
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAverage: return ncclSum;
    case ReduceOp::kMin: return ncclMin;
    case ReduceOp::kMax: return ncclMax;
    case ReduceOp::kProduct: return ncclProd;
  }
  return ncclSum;
}

}  // namespace quorum::ops::nccl
