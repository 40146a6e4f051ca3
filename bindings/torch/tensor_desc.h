// How the libtorch binding sees a tensor: whether quorum can use it, and its description for
// the cross-rank parameter check. Internal to libquorum_torch.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include "bindings/torch/param_check.h"
#include "quorum/torch.h"

namespace quorum::torch_binding {

// quorum's dtype for `type`, or nullopt.
std::optional<DataType> quorum_dtype(at::ScalarType type);

// Why quorum cannot use `t` ("" when it can): undefined, not CPU, not strided, unsupported
// dtype, or (when `need_contiguous`) not contiguous.
std::string problem_with(const at::Tensor& t, bool need_contiguous);

ParamDesc describe(const at::Tensor& t, std::string name, bool need_contiguous);

// Names for `params`: from `named` where a tensor is found there (by identity), else
// "param.<index>".
std::vector<std::string> parameter_names(const std::vector<at::Tensor>& params,
                                         const quorum::torch::NamedParameters& named);

// A fresh name stem for one collective call: "quorum.torch.<kind>.<n>", n counting calls of this
// process (the same sequence on every rank when every rank makes the same calls).
std::string next_tag(const char* kind);

}  // namespace quorum::torch_binding
