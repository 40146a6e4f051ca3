// A small multilayer perceptron with hand-written forward and backward passes, for the demo
// trainer: tanh hidden layers, one logit, binary cross-entropy. Parameters and gradients are
// flat float vectors so they can be handed to quorum as they are.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace quorum::demo {

// Deterministic N(0,1) samples from a 64-bit seed (splitmix64 + Box-Muller), identical on every
// machine and rank.
class Gaussian {
 public:
  explicit Gaussian(uint64_t seed) : state_(seed) {}
  double next() {
    double u1 = (static_cast<double>(bits() >> 11) + 0.5) * 0x1p-53;
    double u2 = static_cast<double>(bits() >> 11) * 0x1p-53;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t bits() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t state_;
};

struct Layer {
  int in = 0, out = 0;
  std::vector<float> weight, bias;          // weight is [out, in], row-major
  std::vector<float> weight_grad, bias_grad;
  std::string name;
};

class Mlp {
 public:
  // widths = {inputs, hidden..., 1}
  Mlp(const std::vector<int>& widths, uint64_t seed);

  // Mean binary cross-entropy of the logits of `x` ([n, inputs]) against labels `y` (0/1);
  // keeps the activations for backward().
  float forward(const float* x, const float* y, int n);

  // Computes gradients of the mean loss, last layer first, and calls `ready(layer)` as soon as
  // each layer's weight and bias gradients are final, like an autograd hook would.
  void backward(const std::function<void(Layer&)>& ready);

  void sgd_step(float lr);
  std::vector<Layer>& layers() { return layers_; }
  // FNV-1a over every parameter's bytes: equal on two ranks iff the replicas are identical.
  uint64_t fingerprint() const;

 private:
  std::vector<Layer> layers_;
  std::vector<std::vector<float>> acts_;  // acts_[0] = input, acts_[k+1] = output of layer k
  std::vector<float> labels_;
  int n_ = 0;
};

// Samples from a fixed random "teacher" network, labelled by the sign of its output: learnable
// but not linearly separable. `x` is [samples, features], `y` 0/1 labels.
void make_dataset(int samples, int features, uint64_t seed, std::vector<float>* x,
                  std::vector<float>* y);

}  // namespace quorum::demo
