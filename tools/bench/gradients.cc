#include "tools/bench/gradients.h"

#include <algorithm>
#include <cstring>

#include "tests/common/test_data.h"
#include "tools/bench/verify.h"

namespace quorum::bench {
namespace {

uint64_t tensor_seed(uint64_t seed, size_t index) { return seed * 7919u + index + 1; }

}  // namespace

Gradients::Gradients(const Model& model, uint64_t seed, int rank, int ranks) {
  size_t total = 0;
  for (const Param& p : model.params) {
    offset_.push_back(total);
    numel_.push_back(static_cast<size_t>(p.numel));
    total += static_cast<size_t>(p.numel);
  }
  grads_.assign(total, 0.0f);
  produced_.resize(total);
  for (size_t t = 0; t < numel_.size(); ++t) {
    float* out = produced_.data() + offset_[t];
    const uint64_t s = tensor_seed(seed, t);
    for (size_t i = 0; i < numel_[t]; ++i) {
      out[i] = static_cast<float>(testing::value(s, rank, i, DataType::kF32));
    }
  }

  if (numel_.empty()) return;
  const size_t n = numel_.size();
  const auto by_size = std::minmax_element(numel_.begin(), numel_.end());
  checked_ = {n - 1, 0, static_cast<size_t>(by_size.second - numel_.begin()),
              static_cast<size_t>(by_size.first - numel_.begin()), n / 2};
  std::sort(checked_.begin(), checked_.end());
  checked_.erase(std::unique(checked_.begin(), checked_.end()), checked_.end());
  for (size_t t : checked_) {
    expected_.push_back(testing::expected_allreduce(tensor_seed(seed, t), ranks, numel_[t],
                                                    DataType::kF32, ReduceOp::kAverage));
  }
}

Tensor Gradients::tensor(size_t i) {
  return {data(i), DataType::kF32, {static_cast<int64_t>(numel_[i])}, Device::host()};
}

void Gradients::produce(size_t i) {
  std::memcpy(data(i), produced_.data() + offset_[i], numel_[i] * sizeof(float));
}

std::optional<std::string> Gradients::check(const std::vector<Param>& names) const {
  for (size_t k = 0; k < checked_.size(); ++k) {
    const size_t t = checked_[k];
    const float* got = grads_.data() + offset_[t];
    if (auto m = first_mismatch(got, expected_[k].data(), numel_[t], DataType::kF32)) {
      return "tensor '" + names[t].name + "' element " + std::to_string(m->index) + " is " +
             m->got + ", expected " + m->want;
    }
  }
  return std::nullopt;
}

}  // namespace quorum::bench
