// What the NCCL backend's files share (internal to ops/nccl): Status values made from CUDA and
// NCCL results, quorum's dtypes and ops in NCCL's terms, and one poll of a communicator's state.
// Pure functions, any thread.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <string>

#include "quorum/types.h"

namespace quorum::ops::nccl {

// "cuda:N", for messages.
std::string where(int ordinal);

// OK for cudaSuccess, else kInternal naming `what` and the error.
Status cuda_status(cudaError_t err, const std::string& what);

// An error for `r`, whatever it is (ncclInProgress included), with comm's last error when known.
Status nccl_error(ncclResult_t r, ncclComm_t comm, const std::string& what);

// OK for a call that succeeded or was accepted (ncclInProgress, non-blocking communicators).
Status nccl_status(ncclResult_t r, ncclComm_t comm, const std::string& what);

// comm's asynchronous state (ncclInProgress while an operation is still being enqueued or a
// communicator initialises), or the query's own error when it could not be asked.
ncclResult_t async_state(ncclComm_t comm);

ncclDataType_t nccl_type(DataType t);
ncclRedOp_t nccl_op(ReduceOp op);  // Average is Sum (the division happens at unpack)

}  // namespace quorum::ops::nccl
