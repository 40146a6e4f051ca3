// The demo MLP's buffers as quorum tensors: a view of one float vector, and the named parameter
// list that quorum::average_parameters() takes (periodic mode). Shared by quorum-demo and
// quorum-bench converge.
#pragma once

#include <vector>

#include "quorum/quorum.h"
#include "tools/mlp.h"

namespace quorum::demo {

inline Tensor view(std::vector<float>& v) {
  return {v.data(), DataType::kF32, {static_cast<int64_t>(v.size())}, Device::host()};
}

inline std::vector<NamedTensor> parameters(Mlp& model) {
  std::vector<NamedTensor> out;
  for (Layer& l : model.layers()) {
    out.push_back({l.name + ".weight", view(l.weight)});
    out.push_back({l.name + ".bias", view(l.bias)});
  }
  return out;
}

}  // namespace quorum::demo
