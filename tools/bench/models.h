// models.h — the gradient lists of real models, for synthetic data-parallel training: every
// parameter tensor's name and shape in forward order (torchvision / Hugging Face naming), and a
// relative backward cost that decides how much of a step's compute precedes the gradient.
// Pure data; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace quorum::bench {

struct Param {
  std::string name;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  double cost = 0;  // relative backward work (multiply-adds, roughly) producing this gradient
};

struct Model {
  std::string name;
  std::string description;
  std::vector<Param> params;  // forward order; backward produces them last to first

  int64_t total_numel() const;
};

// resnet50: 161 tensors, 25,557,032 floats (torchvision's ResNet-50, 224x224 input).
// bert-base: 199 tensors, 109,482,240 floats (bert-base-uncased, sequence length 128).
// tiny-many: 500 tensors of 1-4 K floats each.
std::optional<Model> make_model(std::string_view name);
std::vector<std::string> model_names();

}  // namespace quorum::bench
