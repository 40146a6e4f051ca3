#include "tools/mlp.h"

#include <cstring>

namespace quorum::demo {

Mlp::Mlp(const std::vector<int>& widths, uint64_t seed) {
  Gaussian g(seed);
  for (size_t k = 0; k + 1 < widths.size(); ++k) {
    Layer l;
    l.in = widths[k];
    l.out = widths[k + 1];
    l.name = "layer" + std::to_string(k + 1);
    l.weight.resize(static_cast<size_t>(l.in * l.out));
    float scale = 1.0f / std::sqrt(static_cast<float>(l.in));  // keeps tanh out of saturation
    for (float& w : l.weight) w = static_cast<float>(g.next()) * scale;
    l.bias.assign(static_cast<size_t>(l.out), 0.0f);
    l.weight_grad.resize(l.weight.size());
    l.bias_grad.resize(l.bias.size());
    layers_.push_back(std::move(l));
  }
}

float Mlp::forward(const float* x, const float* y, int n) {
  n_ = n;
  acts_.assign(layers_.size() + 1, {});
  acts_[0].assign(x, x + static_cast<size_t>(n * layers_[0].in));
  labels_.assign(y, y + n);
  for (size_t k = 0; k < layers_.size(); ++k) {
    const Layer& l = layers_[k];
    const bool last = k + 1 == layers_.size();
    std::vector<float>& out = acts_[k + 1];
    out.resize(static_cast<size_t>(n * l.out));
    for (int s = 0; s < n; ++s) {
      const float* in = &acts_[k][static_cast<size_t>(s * l.in)];
      for (int o = 0; o < l.out; ++o) {
        const float* w = &l.weight[static_cast<size_t>(o * l.in)];
        float z = l.bias[static_cast<size_t>(o)];
        for (int i = 0; i < l.in; ++i) z += w[i] * in[i];
        out[static_cast<size_t>(s * l.out + o)] = last ? z : std::tanh(z);
      }
    }
  }
  // BCE with logits, in the numerically stable form.
  double loss = 0;
  for (int s = 0; s < n; ++s) {
    double z = acts_.back()[static_cast<size_t>(s)];
    loss += std::max(z, 0.0) - z * y[s] + std::log1p(std::exp(-std::abs(z)));
  }
  return static_cast<float>(loss / n);
}

void Mlp::backward(const std::function<void(Layer&)>& ready) {
  // delta = dLoss/dz for the current layer's pre-activations, [n, out].
  std::vector<float> delta(static_cast<size_t>(n_));
  for (int s = 0; s < n_; ++s) {
    float z = acts_.back()[static_cast<size_t>(s)];
    delta[static_cast<size_t>(s)] = (1.0f / (1.0f + std::exp(-z)) - labels_[static_cast<size_t>(s)]) / n_;
  }
  for (size_t k = layers_.size(); k-- > 0;) {
    Layer& l = layers_[k];
    const std::vector<float>& in = acts_[k];
    std::fill(l.weight_grad.begin(), l.weight_grad.end(), 0.0f);
    std::fill(l.bias_grad.begin(), l.bias_grad.end(), 0.0f);
    for (int s = 0; s < n_; ++s) {
      for (int o = 0; o < l.out; ++o) {
        float d = delta[static_cast<size_t>(s * l.out + o)];
        l.bias_grad[static_cast<size_t>(o)] += d;
        float* gw = &l.weight_grad[static_cast<size_t>(o * l.in)];
        const float* x = &in[static_cast<size_t>(s * l.in)];
        for (int i = 0; i < l.in; ++i) gw[i] += d * x[i];
      }
    }
    if (k > 0) {  // propagate through this layer's weights and the previous tanh
      std::vector<float> prev(static_cast<size_t>(n_ * l.in), 0.0f);
      for (int s = 0; s < n_; ++s) {
        for (int o = 0; o < l.out; ++o) {
          float d = delta[static_cast<size_t>(s * l.out + o)];
          const float* w = &l.weight[static_cast<size_t>(o * l.in)];
          float* p = &prev[static_cast<size_t>(s * l.in)];
          for (int i = 0; i < l.in; ++i) p[i] += d * w[i];
        }
      }
      for (size_t j = 0; j < prev.size(); ++j) prev[j] *= 1.0f - in[j] * in[j];
      delta.swap(prev);
    }
    ready(l);  // this layer's gradients are final: hand them over while earlier layers compute
  }
}

void Mlp::sgd_step(float lr) {
  for (Layer& l : layers_) {
    for (size_t i = 0; i < l.weight.size(); ++i) l.weight[i] -= lr * l.weight_grad[i];
    for (size_t i = 0; i < l.bias.size(); ++i) l.bias[i] -= lr * l.bias_grad[i];
  }
}

uint64_t Mlp::fingerprint() const {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const std::vector<float>& v) {
    const auto* b = reinterpret_cast<const unsigned char*>(v.data());
    for (size_t i = 0; i < v.size() * sizeof(float); ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  for (const Layer& l : layers_) {
    mix(l.weight);
    mix(l.bias);
  }
  return h;
}

// Samples from a fixed random "teacher" network, labelled by the sign of its output: learnable
// but not linearly separable.
void make_dataset(int samples, int features, uint64_t seed, std::vector<float>* x,
                  std::vector<float>* y) {
  Gaussian g(seed);
  x->resize(static_cast<size_t>(samples * features));
  for (float& v : *x) v = static_cast<float>(g.next());
  Mlp teacher({features, 32, 1}, seed ^ 0x5eedull);
  y->assign(static_cast<size_t>(samples), 0.0f);
  std::vector<float> zeros(static_cast<size_t>(samples), 0.0f);
  teacher.forward(x->data(), zeros.data(), samples);
  // Recover the teacher's logits by running its layers by hand: the sign decides the label.
  const Layer& l1 = teacher.layers()[0];
  const Layer& l2 = teacher.layers()[1];
  for (int s = 0; s < samples; ++s) {
    double z = l2.bias[0];
    for (int h = 0; h < l1.out; ++h) {
      double a = l1.bias[static_cast<size_t>(h)];
      for (int i = 0; i < features; ++i) {
        a += l1.weight[static_cast<size_t>(h * features + i)] * (*x)[static_cast<size_t>(s * features + i)];
      }
      z += l2.weight[static_cast<size_t>(h)] * std::tanh(3.0 * a);
    }
    (*y)[static_cast<size_t>(s)] = z > 0 ? 1.0f : 0.0f;
  }
}


}  // namespace quorum::demo
