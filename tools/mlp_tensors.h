// The demo MLP's buffers as quorum tensors: a view of one float vector, and the named parameter
// list that quorum::average_parameters() takes (periodic mode). Shared by quorum-demo and
// quorum-bench converge.
#pragma once

#include <cstdint>
#include <map>
#include <string>
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

// quorum::flush() with the folded late gradients applied to `model` by SGD at `lr`. Each late
// gradient weighs 1 / ranks, as in a full round (the fold's Average scaled by gradients /
// size()). Adds the gradients applied to `*folded` when given.
inline Status flush_into(Mlp& model, float lr, int64_t* folded = nullptr) {
  std::map<std::string, std::vector<float>*> by_name;
  for (Layer& l : model.layers()) {
    by_name[l.name + ".weight.grad"] = &l.weight;
    by_name[l.name + ".bias.grad"] = &l.bias;
  }
  const float ranks = static_cast<float>(size());
  return flush([&](const std::string& name, const Tensor& g, int64_t gradients) {
    auto it = by_name.find(name);
    if (it == by_name.end()) return;  // not a parameter's gradient (e.g. the demo's loss)
    const auto* d = static_cast<const float*>(g.data);
    const float step = lr * static_cast<float>(gradients) / ranks;
    for (size_t i = 0; i < it->second->size(); ++i) (*it->second)[i] -= step * d[i];
    if (folded) *folded += gradients;
  });
}

}  // namespace quorum::demo
