// A build without NCCL: there is no device backend, and CUDA tensors are refused at enqueue.
#include "ops/nccl/device_backend.h"

namespace quorum::ops {

bool device_backend_built() { return false; }

Status create_device_backend(MPI_Comm, int, std::optional<std::string>,
                             std::unique_ptr<DeviceBackend>* out) {
  out->reset();
  return Status(StatusCode::kUnimplemented,
                "this build of quorum has no NCCL backend (configured without NCCL/CUDA)");
}

}  // namespace quorum::ops
