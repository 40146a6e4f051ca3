// The blocking one-tensor helpers and broadcast_parameters.
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>

#include "bindings/torch/param_check.h"
#include "bindings/torch/tensor_desc.h"
#include "quorum/torch.h"

namespace quorum::torch {

using torch_binding::describe;
using torch_binding::next_tag;
using torch_binding::problem_with;

DataType to_quorum_dtype(at::ScalarType type, const std::string& what) {
  if (auto q = torch_binding::quorum_dtype(type)) return *q;
  throw Error(
      StatusCode::kInvalidArgument,
      what + ": dtype " + c10::toString(type) +
          " is not supported (quorum reduces Half, BFloat16, Float, Double, Int, Long, Byte)");
}

Tensor view_of(const at::Tensor& tensor, const std::string& what) {
  std::string problem = problem_with(tensor, /*need_contiguous=*/true);
  if (!problem.empty()) {
    throw Error(tensor.defined() && tensor.is_cuda() ? StatusCode::kUnimplemented
                                                     : StatusCode::kInvalidArgument,
                what + ": " + problem);
  }
  return Tensor{tensor.data_ptr(), to_quorum_dtype(tensor.scalar_type(), what),
                tensor.sizes().vec(), Device::host()};
}

namespace {

void check(const Status& s) {
  if (!s.is_ok()) throw Error(s);
}

std::string or_default(const std::string& name, const char* kind) {
  return name.empty() ? next_tag(kind) : name;
}

}  // namespace

void allreduce_(const at::Tensor& tensor, ReduceOp op, const std::string& name) {
  std::string n = or_default(name, "allreduce");
  Tensor v = view_of(tensor, "allreduce_: tensor '" + n + "'");
  check(wait(enqueue_allreduce(n, v, v, op)));
}

at::Tensor allreduce(const at::Tensor& tensor, ReduceOp op, const std::string& name) {
  std::string n = or_default(name, "allreduce");
  std::string problem = problem_with(tensor, /*need_contiguous=*/false);
  if (!problem.empty()) view_of(tensor, "allreduce: tensor '" + n + "'");  // throws the message
  at::NoGradGuard no_grad;
  at::Tensor in = tensor.contiguous();
  at::Tensor out = at::empty(tensor.sizes(), tensor.options().requires_grad(false));
  Tensor vin = view_of(in, "allreduce: tensor '" + n + "'");
  Tensor vout = view_of(out, "allreduce: tensor '" + n + "'");
  check(wait(enqueue_allreduce(n, vin, vout, op)));
  return out;
}

void broadcast_(const at::Tensor& tensor, int root, const std::string& name) {
  std::string n = or_default(name, "broadcast");
  Tensor v = view_of(tensor, "broadcast_: tensor '" + n + "'");
  check(wait(enqueue_broadcast(n, v, root)));
}

namespace {

void broadcast_all(const std::vector<at::Tensor>& params, const std::vector<std::string>& names,
                   int root) {
  const char* what = "broadcast_parameters";
  // Every rank checks the root only after all agreed on it, so all throw or none does.
  torch_binding::ParamList mine{"root " + std::to_string(root), {}};
  for (size_t i = 0; i < params.size(); ++i)
    mine.params.push_back(describe(params[i], names[i], true));
  check(torch_binding::check_across_ranks(mine, next_tag("check"), what));
  if (root < 0 || root >= quorum::size()) {
    throw Error(StatusCode::kInvalidArgument, std::string(what) + ": root " + std::to_string(root) +
                                                  " is not a rank of this " +
                                                  std::to_string(quorum::size()) + "-rank job");
  }
  // Raw memory writes: no autograd history, as under torch::NoGradGuard. Enqueue all, then wait
  // all, so the engine can fuse them.
  std::vector<Handle> handles;
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor v = view_of(params[i], what);
    handles.push_back(enqueue_broadcast("param." + std::to_string(i), v, root));
  }
  Status first;
  size_t first_index = 0;
  for (size_t i = 0; i < handles.size(); ++i) {
    Status s = wait(handles[i]);
    if (!s.is_ok() && first.is_ok()) {
      first = s;
      first_index = i;
    }
  }
  if (!first.is_ok()) {
    throw Error(first.code(), std::string(what) + ": " +
                                  torch_binding::subject(names[first_index], first_index) + ": " +
                                  first.message());
  }
  for (const at::Tensor& p : params) p.unsafeGetTensorImpl()->bump_version();
}

}  // namespace

void broadcast_parameters(const NamedParameters& params, int root) {
  std::vector<at::Tensor> tensors;
  std::vector<std::string> names;
  for (const auto& item : params) {
    tensors.push_back(item.value());
    names.push_back(item.key());
  }
  broadcast_all(tensors, names, root);
}

void broadcast_parameters(const std::vector<at::Tensor>& params, int root) {
  broadcast_all(params, torch_binding::parameter_names(params, NamedParameters()), root);
}

}  // namespace quorum::torch
