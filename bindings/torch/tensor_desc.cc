#include "bindings/torch/tensor_desc.h"

#include <atomic>
#include <unordered_map>

namespace quorum::torch_binding {

std::optional<DataType> quorum_dtype(at::ScalarType type) {
  switch (type) {
    case at::kHalf:
      return DataType::kF16;
    case at::kBFloat16:
      return DataType::kBF16;
    case at::kFloat:
      return DataType::kF32;
    case at::kDouble:
      return DataType::kF64;
    case at::kInt:
      return DataType::kI32;
    case at::kLong:
      return DataType::kI64;
    case at::kByte:
      return DataType::kU8;
    default:
      return std::nullopt;
  }
}

std::string problem_with(const at::Tensor& t, bool need_contiguous) {
  if (!t.defined()) return "the tensor is undefined";
  if (t.is_cuda()) {
    return "it is on " + t.device().str() +
           ": the torch binding takes CPU tensors only (CUDA tensors go through quorum's C++ "
           "API with Device::cuda when quorum is built with NCCL)";
  }
  if (!t.is_cpu()) return "it is on device " + t.device().str() + "; quorum takes CPU tensors";
  if (t.layout() != at::kStrided)
    return "it is not a dense (strided) tensor; sparse and other layouts are not supported";
  if (!quorum_dtype(t.scalar_type())) {
    return std::string("dtype ") + c10::toString(t.scalar_type()) +
           " is not supported (quorum reduces Half, BFloat16, Float, Double, Int, Long, Byte)";
  }
  if (need_contiguous && !t.is_contiguous()) {
    return "it is not contiguous (strides " + shape_string(t.strides().vec()) + " for shape " +
           shape_string(t.sizes().vec()) +
           "); pass tensor.contiguous() or use "
           "the out-of-place allreduce()";
  }
  return "";
}

ParamDesc describe(const at::Tensor& t, std::string name, bool need_contiguous) {
  ParamDesc d;
  d.name = std::move(name);
  d.problem = problem_with(t, need_contiguous);
  if (!t.defined()) return d;
  auto q = quorum_dtype(t.scalar_type());
  d.dtype = q ? std::string(dtype_name(*q)) : std::string(c10::toString(t.scalar_type()));
  d.device = t.device().str();
  d.shape = t.sizes().vec();
  d.requires_grad = t.requires_grad();
  return d;
}

std::vector<std::string> parameter_names(const std::vector<at::Tensor>& params,
                                         const quorum::torch::NamedParameters& named) {
  std::unordered_map<const void*, std::string> by_impl;
  for (const auto& item : named) by_impl.emplace(item.value().unsafeGetTensorImpl(), item.key());
  std::vector<std::string> names;
  for (size_t i = 0; i < params.size(); ++i) {
    auto it = params[i].defined() ? by_impl.find(params[i].unsafeGetTensorImpl()) : by_impl.end();
    names.push_back(it != by_impl.end() ? it->second : "param." + std::to_string(i));
  }
  return names;
}

std::string next_tag(const char* kind) {
  static std::atomic<uint64_t> counter{0};
  return std::string("quorum.torch.") + kind + "." + std::to_string(counter.fetch_add(1));
}

}  // namespace quorum::torch_binding
