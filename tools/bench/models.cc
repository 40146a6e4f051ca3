#include "tools/bench/models.h"

namespace quorum::bench {
namespace {

class Builder {
 public:
  // `cost_per_element`: multiply-adds per parameter element in backward (e.g. the output's
  // spatial size for a convolution's weight).
  void add(std::string name, std::vector<int64_t> shape, double cost_per_element) {
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    params_.push_back(
        {std::move(name), std::move(shape), numel, cost_per_element * static_cast<double>(numel)});
  }
  std::vector<Param> take() { return std::move(params_); }

 private:
  std::vector<Param> params_;
};

// ResNet-50 v1.5 as torchvision builds it: the stride sits in each bottleneck's 3x3 conv, and
// the first block of every stage has a 1x1 downsample conv + bn. Costs use the output's
// spatial size (224x224 input: 112 after conv1, 56/28/14/7 in the four stages).
Model resnet50() {
  Builder b;
  auto conv_bn = [&b](const std::string& conv, const std::string& bn, int64_t out, int64_t in,
                      int64_t k, double hw) {
    b.add(conv + ".weight", {out, in, k, k}, hw);
    b.add(bn + ".weight", {out}, hw);
    b.add(bn + ".bias", {out}, hw);
  };
  conv_bn("conv1", "bn1", 64, 3, 7, 112.0 * 112);
  int64_t inplanes = 64;
  int64_t resolution = 56;
  const int64_t planes_per_stage[4] = {64, 128, 256, 512};
  const int blocks_per_stage[4] = {3, 4, 6, 3};
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t planes = planes_per_stage[stage];
    for (int block = 0; block < blocks_per_stage[stage]; ++block) {
      const int64_t stride = stage > 0 && block == 0 ? 2 : 1;
      const double in_hw = static_cast<double>(resolution * resolution);
      const double out_hw = in_hw / static_cast<double>(stride * stride);
      const std::string p = "layer" + std::to_string(stage + 1) + "." + std::to_string(block);
      conv_bn(p + ".conv1", p + ".bn1", planes, inplanes, 1, in_hw);
      conv_bn(p + ".conv2", p + ".bn2", planes, planes, 3, out_hw);
      conv_bn(p + ".conv3", p + ".bn3", planes * 4, planes, 1, out_hw);
      if (block == 0) {
        conv_bn(p + ".downsample.0", p + ".downsample.1", planes * 4, inplanes, 1, out_hw);
      }
      inplanes = planes * 4;
      resolution /= stride;
    }
  }
  b.add("fc.weight", {1000, 2048}, 1);
  b.add("fc.bias", {1000}, 1);
  return {"resnet50", "ResNet-50 as torchvision builds it, 224x224 input", b.take()};
}

// bert-base-uncased (BertModel with pooler): hidden 768, 12 layers, 12 heads, FFN 3072, vocab
// 30522, 512 positions, 2 token types. Costs assume sequence length 128: a dense layer's weight
// gradient is 128 multiply-adds per element; an embedding's gradient is a scatter of 128 rows.
Model bert_base() {
  constexpr int64_t kHidden = 768, kFfn = 3072, kVocab = 30522, kPositions = 512, kLayers = 12;
  constexpr double kSeq = 128;
  Builder b;
  const double rows = kSeq * kHidden;  // elements an embedding's backward touches
  b.add("embeddings.word_embeddings.weight", {kVocab, kHidden}, rows / (kVocab * kHidden));
  b.add("embeddings.position_embeddings.weight", {kPositions, kHidden},
        rows / (kPositions * kHidden));
  b.add("embeddings.token_type_embeddings.weight", {2, kHidden}, rows / (2 * kHidden));
  b.add("embeddings.LayerNorm.weight", {kHidden}, kSeq);
  b.add("embeddings.LayerNorm.bias", {kHidden}, kSeq);
  auto dense = [&b, kSeq](const std::string& name, int64_t out, int64_t in) {
    b.add(name + ".weight", {out, in}, kSeq);
    b.add(name + ".bias", {out}, kSeq);
  };
  for (int64_t l = 0; l < kLayers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l);
    dense(p + ".attention.self.query", kHidden, kHidden);
    dense(p + ".attention.self.key", kHidden, kHidden);
    dense(p + ".attention.self.value", kHidden, kHidden);
    dense(p + ".attention.output.dense", kHidden, kHidden);
    b.add(p + ".attention.output.LayerNorm.weight", {kHidden}, kSeq);
    b.add(p + ".attention.output.LayerNorm.bias", {kHidden}, kSeq);
    dense(p + ".intermediate.dense", kFfn, kHidden);
    dense(p + ".output.dense", kHidden, kFfn);
    b.add(p + ".output.LayerNorm.weight", {kHidden}, kSeq);
    b.add(p + ".output.LayerNorm.bias", {kHidden}, kSeq);
  }
  b.add("pooler.dense.weight", {kHidden, kHidden}, 1);  // the [CLS] token only
  b.add("pooler.dense.bias", {kHidden}, 1);
  return {"bert-base", "BERT-base uncased with pooler, sequence length 128", b.take()};
}

// Many small tensors: the control plane and fusion under the most pressure per byte.
Model tiny_many() {
  constexpr int kTensors = 500;
  Builder b;
  for (int i = 0; i < kTensors; ++i) {
    const int64_t n = 1024 + (static_cast<int64_t>(i) * 2654435761LL) % 3073;  // 1 K .. 4 K
    b.add("tiny." + std::to_string(i), {n}, 1);
  }
  return {"tiny-many", "500 tensors of 1-4 K floats", b.take()};
}

}  // namespace

int64_t Model::total_numel() const {
  int64_t n = 0;
  for (const Param& p : params) n += p.numel;
  return n;
}

std::optional<Model> make_model(std::string_view name) {
  if (name == "resnet50") return resnet50();
  if (name == "bert-base") return bert_base();
  if (name == "tiny-many") return tiny_many();
  return std::nullopt;
}

std::vector<std::string> model_names() { return {"resnet50", "bert-base", "tiny-many"}; }

}  // namespace quorum::bench
