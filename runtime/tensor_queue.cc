#include "runtime/tensor_queue.h"

namespace quorum {

Status TensorQueue::push(PendingRequest&& r, bool may_wake) {
  bool wake = false;
  {
    std::lock_guard lk(mu_);
    if (!closed_reason_.empty()) {
      return Status(StatusCode::kFailedPrecondition,
                    "tensor '" + r.desc.name + "': " + closed_reason_);
    }
    if (!in_flight_.insert(r.desc.name).second) {
      return Status(StatusCode::kFailedPrecondition,
                    "tensor '" + r.desc.name +
                        "': a tensor of this name is already in flight on this rank");
    }
    const bool alone = r.elements * dtype_size(r.input.dtype) > alone_bytes_;
    fresh_.push_back(std::move(r));
    wake = (++since_drain_ >= wake_after_ || alone) && may_wake;
  }
  if (wake) wake_();
  return Status::ok();
}

std::vector<PendingRequest> TensorQueue::drain() {
  std::lock_guard lk(mu_);
  std::vector<PendingRequest> out;
  out.swap(fresh_);
  since_drain_ = 0;
  wake_after_ = 0;
  return out;
}

void TensorQueue::wake_after(size_t pushes) {
  bool wake = false;
  {
    std::lock_guard lk(mu_);
    wake_after_ = pushes;
    wake = pushes > 0 && since_drain_ >= pushes;
  }
  if (wake) wake_();
}

void TensorQueue::finish(const std::string& name) {
  std::lock_guard lk(mu_);
  in_flight_.erase(name);
}

std::vector<PendingRequest> TensorQueue::close(const std::string& reason) {
  std::lock_guard lk(mu_);
  if (closed_reason_.empty()) closed_reason_ = reason;
  std::vector<PendingRequest> out;
  out.swap(fresh_);
  return out;
}

}  // namespace quorum
