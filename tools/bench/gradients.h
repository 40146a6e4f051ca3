// gradients.h — one rank's gradients for a model, as synthetic training uses them: one f32
// arena with a view per parameter (as frameworks keep them), the values backward "computes"
// for each (the test_data rule, a seed per tensor), and the exact Average of a few checked
// tensors (first and last produced, largest, smallest, middle). Owns its memory; one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "quorum/types.h"
#include "tools/bench/models.h"

namespace quorum::bench {

class Gradients {
 public:
  Gradients(const Model& model, uint64_t seed, int rank, int ranks);

  size_t size() const { return numel_.size(); }
  size_t numel(size_t i) const { return numel_[i]; }
  size_t total_numel() const { return grads_.size(); }
  size_t offset(size_t i) const { return offset_[i]; }
  float* data(size_t i) { return grads_.data() + offset_[i]; }
  Tensor tensor(size_t i);

  // Writes tensor i's values, as backward would, over whatever the last step left there.
  void produce(size_t i);

  // The checked tensors against the exact Average over ranks: a description of the first wrong
  // element, or nullopt. `names` are the model's parameter names, for the message.
  std::optional<std::string> check(const std::vector<Param>& names) const;
  size_t checked_count() const { return checked_.size(); }

 private:
  std::vector<float> grads_;
  std::vector<float> produced_;  // what backward writes, per rank
  std::vector<size_t> offset_;
  std::vector<size_t> numel_;
  std::vector<size_t> checked_;
  std::vector<std::vector<unsigned char>> expected_;  // per checked tensor
};

}  // namespace quorum::bench
