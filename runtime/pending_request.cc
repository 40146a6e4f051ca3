#include "runtime/pending_request.h"

#include <limits>

#include "ops/nccl/device_backend.h"

namespace quorum {
namespace {

Status bad(const std::string& name, const std::string& what) {
  return Status(StatusCode::kInvalidArgument, "tensor '" + name + "': " + what);
}

bool valid_dtype(DataType t) { return static_cast<int>(t) < kNumDataTypes; }

// Element count of `t`, or an error for negative or overflowing shapes.
Status count_elements(const std::string& name, const char* which, const Tensor& t, size_t* out) {
  if (!valid_dtype(t.dtype)) {
    return bad(name, std::string(which) + " has unsupported dtype value " +
                         std::to_string(static_cast<int>(t.dtype)));
  }
  if (t.shape.size() > coord::kMaxDims) {
    return bad(name, std::string(which) + " has " + std::to_string(t.shape.size()) +
                         " dimensions; at most " + std::to_string(coord::kMaxDims) + " are supported");
  }
  size_t n = 1;
  const size_t limit = std::numeric_limits<size_t>::max() / 16 / dtype_size(t.dtype);
  for (size_t i = 0; i < t.shape.size(); ++i) {
    int64_t d = t.shape[i];
    if (d < 0) {
      return bad(name, std::string(which) + " dimension " + std::to_string(i) + " is negative (" +
                           std::to_string(d) + ")");
    }
    if (d != 0 && n > limit / static_cast<size_t>(d)) {
      return bad(name, std::string(which) + " shape overflows the addressable size");
    }
    n *= static_cast<size_t>(d);
  }
  if (n > 0 && t.data == nullptr) return bad(name, std::string(which) + " data pointer is null");
  if (t.device.kind == Device::Kind::kCuda) {
    if (!ops::device_backend_built()) {
      return Status(StatusCode::kUnimplemented,
                    "tensor '" + name + "': " + which + " is on cuda:" +
                        std::to_string(t.device.ordinal) +
                        ", and CUDA tensors need the NCCL backend, which this build does not "
                        "have (configured without NCCL/CUDA)");
    }
    if (t.device.ordinal < 0) {
      return bad(name, std::string(which) + " has a negative CUDA ordinal (" +
                           std::to_string(t.device.ordinal) + ")");
    }
  }
  if (t.device.kind != Device::Kind::kHost && t.device.kind != Device::Kind::kCuda) {
    return bad(name, std::string(which) + " has an unknown device kind");
  }
  *out = n;
  return Status::ok();
}

}  // namespace

Status validate_request(const PendingRequest& r, int size, size_t* elements) {
  const std::string& name = r.desc.name;
  if (name.empty()) return bad(name, "the name is empty");
  if (name.size() > coord::kMaxNameBytes) {
    return bad(name.substr(0, 64) + "...", "the name is longer than " +
                                               std::to_string(coord::kMaxNameBytes) + " bytes");
  }
  QUORUM_RETURN_IF_ERROR(count_elements(name, "input", r.input, elements));
  switch (r.desc.kind) {
    case coord::CollectiveKind::kAllreduce: {
      if (static_cast<int>(r.desc.op) >= kNumReduceOps) {
        return bad(name, "unsupported reduce op value " + std::to_string(static_cast<int>(r.desc.op)));
      }
      size_t out_elements = 0;
      QUORUM_RETURN_IF_ERROR(count_elements(name, "output", r.output, &out_elements));
      if (r.output.dtype != r.input.dtype) {
        return bad(name, "output dtype " + std::string(dtype_name(r.output.dtype)) +
                             " differs from input dtype " + std::string(dtype_name(r.input.dtype)));
      }
      if (r.output.device.kind != r.input.device.kind ||
          (r.input.device.kind == Device::Kind::kCuda &&
           r.output.device.ordinal != r.input.device.ordinal)) {
        auto where = [](const Device& d) {
          return d.kind == Device::Kind::kHost ? std::string("host")
                                               : "cuda:" + std::to_string(d.ordinal);
        };
        return bad(name, "output is on " + where(r.output.device) + " but input is on " +
                             where(r.input.device));
      }
      if (out_elements != *elements) {
        return bad(name, "output has " + std::to_string(out_elements) + " elements but input has " +
                             std::to_string(*elements));
      }
      break;
    }
    case coord::CollectiveKind::kBroadcast:
      if (r.desc.root < 0 || r.desc.root >= size) {
        return bad(name, "broadcast root " + std::to_string(r.desc.root) + " is not a rank of this " +
                             std::to_string(size) + "-rank job");
      }
      break;
    case coord::CollectiveKind::kAllgather:
      if (r.input.shape.empty()) return bad(name, "allgather needs at least one dimension");
      if (!r.allocate) return bad(name, "allgather needs an output allocator");
      break;
  }
  return Status::ok();
}

}  // namespace quorum
