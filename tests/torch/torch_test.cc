// The libtorch binding under mpiexec -n 1..3: DistributedOptimizer averages exactly what
// autograd produced on every rank (hooks enqueue, step() waits), ranks without a gradient take
// part with zeros, broadcast_parameters and the allreduce helpers give exact values, and bad
// input (unsupported dtype, non-contiguous, non-CPU, parameter lists that differ across ranks,
// a second backward before step) throws the same clear Error naming the parameter on every rank,
// without hanging; the runtime keeps working afterwards.
#include "quorum/torch.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/full.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/zeros.h>
#include <gtest/gtest.h>
#include <torch/optim/sgd.h>

#include <cstdlib>
#include <chrono>
#include <string>
#include <thread>

#include "quorum/quorum.h"
#include "tests/mpi/mpi_main.h"

namespace quorum {
namespace {

using quorum::torch::DistributedOptimizer;
using quorum::torch::Error;

int r() { return rank(); }
int p() { return size(); }

at::Tensor param(std::vector<int64_t> shape, double value = 0.0) {
  return at::full(shape, value, at::kFloat).requires_grad_(true);
}

std::shared_ptr<::torch::optim::SGD> sgd(std::vector<at::Tensor> params, double lr = 1.0) {
  return std::make_shared<::torch::optim::SGD>(params, ::torch::optim::SGDOptions(lr));
}

// Runs `f`, expects an Error with `code` whose message contains every fragment.
template <typename F>
void expect_error(F&& f, StatusCode code, std::vector<std::string> fragments) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << fragments[0] << "'";
  } catch (const Error& e) {
    EXPECT_EQ(code, e.code()) << e.what();
    for (const auto& frag : fragments) {
      EXPECT_NE(std::string::npos, std::string(e.what()).find(frag)) << e.what();
    }
  }
}

// The runtime still answers after an error.
void expect_runtime_healthy(const std::string& name) {
  at::Tensor t = at::ones({2}, at::kFloat);
  quorum::torch::allreduce_(t, ReduceOp::kSum, name);
  EXPECT_EQ(p(), t[0].item<float>());
}

TEST(DistributedOptimizer, AveragesGradientsAsAutogradProducesThem) {
  at::Tensor w = param({3}, 1.0), b = param({2, 2}, 0.5);
  DistributedOptimizer opt(sgd({w, b}), {.op = ReduceOp::kAverage, .prefix = "avg"});
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    // d/dw = (rank+1) * [1,2,3]; d/db = rank * ones
    at::Tensor c = at::arange(1, 4, at::kFloat) * (r() + 1);
    at::Tensor loss = (w * c).sum() + (b * r()).sum();
    loss.backward();
    opt.synchronize();
    double avg_w = (p() + 1) / 2.0, avg_b = (p() - 1) / 2.0;
    for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(avg_w * (i + 1), w.grad()[i].item<float>());
    EXPECT_FLOAT_EQ(avg_b, b.grad()[1][1].item<float>());
    opt.optimizer().step();
  }
  // Three SGD steps with lr 1 from 1.0: identical on every rank.
  EXPECT_FLOAT_EQ(1.0f - 3 * (p() + 1) / 2.0f * 3, w[2].item<float>());
}

TEST(DistributedOptimizer, StepWaitsAndRanksWithoutAGradientContributeZeros) {
  at::Tensor used = param({4}, 0.0), sometimes = param({4}, 0.0);
  DistributedOptimizer opt(sgd({used, sometimes}), {.op = ReduceOp::kSum, .prefix = "sum"});
  opt.zero_grad();
  at::Tensor loss = used.sum() * 2;
  if (r() % 2 == 1) loss = loss + sometimes.sum() * 3;  // only odd ranks touch it
  loss.backward();
  opt.step();  // SGD lr 1: param -= summed gradient
  EXPECT_FLOAT_EQ(-2.0f * p(), used[0].item<float>());
  EXPECT_FLOAT_EQ(-3.0f * (p() / 2), sometimes[3].item<float>());
}

// Not behind (every mode but bounded rounds): catch_up() does nothing and says so. Under
// QUORUM_SYNC_MODE=bounded (mpi_torch_bounded_n3) the last rank is slow twice: it catches up
// at least once, and the parameters end identical on every rank.
TEST(DistributedOptimizer, CatchUpSkipsTheStepOfARankBehind) {
  const bool bounded = std::getenv("QUORUM_SYNC_MODE") &&
                       std::string(std::getenv("QUORUM_SYNC_MODE")) == "bounded";
  at::Tensor w = param({4}, 0.0);
  DistributedOptimizer opt(sgd({w}, 0.1), {.prefix = "catch"});
  int caught = 0;
  for (int step = 0; step < 20; ++step) {
    if (opt.catch_up()) {
      ++caught;
    } else {
      const bool slow = r() == p() - 1 && (step == 3 || step == 12);
      std::this_thread::sleep_for(std::chrono::milliseconds(slow ? 40 : 1));
      opt.zero_grad();
      (w * at::full({4}, r() + 1.0, at::kFloat)).sum().backward();
      opt.step();
    }
  }
  // After the same number of steps every rank applied the same rounds (a sync round only here:
  // one every step would keep the slow rank from falling behind).
  at::Tensor first = w.clone();
  ASSERT_TRUE(quorum::allreduce("catch.check", quorum::torch::view_of(first, "test"),
                                quorum::torch::view_of(first, "test"), ReduceOp::kMax).is_ok());
  EXPECT_TRUE(first.equal(w)) << "parameters differ across ranks";
  int total = caught;
  Tensor t{&total, DataType::kI32, {1}, Device::host()};
  ASSERT_TRUE(quorum::allreduce("catch.count", t, t, ReduceOp::kSum).is_ok());
  if (bounded && p() > 2) {
    EXPECT_GT(total, 0) << "the slow rank never caught up";
  } else if (!bounded) {
    EXPECT_EQ(0, total);
  }
}

// QUORUM_SYNC_MODE=periodic, QUORUM_AVERAGE_PERIOD=4: three local steps on each rank's own
// gradient, then the fourth step's update is followed by averaging the parameters.
TEST(Periodic, LocalStepsThenAveragedParameters) {
  const char* mode = std::getenv("QUORUM_SYNC_MODE");
  if (!mode || std::string(mode) != "periodic") GTEST_SKIP() << "QUORUM_SYNC_MODE=periodic only";
  at::Tensor w = param({4}, 0.0);
  DistributedOptimizer opt(sgd({w}), {.prefix = "periodic"});
  const Stats before = stats();
  for (int k = 0; k < 8; ++k) {
    opt.zero_grad();
    at::Tensor loss = (w * (r() + 1)).sum();  // gradient: rank + 1
    loss.backward();
    opt.step();  // SGD lr 1
    const int since = k % 4 + 1;  // steps since the last averaging
    const float mine = -static_cast<float>(since * (r() + 1));
    const float averaged = -4.0f * (p() + 1) / 2.0f;
    const float base = k >= 4 ? averaged : 0.0f;
    if (since < 4) {
      EXPECT_FLOAT_EQ(base + mine, w[0].item<float>()) << "local step " << k;
    } else {
      EXPECT_FLOAT_EQ(base + averaged, w[3].item<float>()) << "averaged at step " << k;
    }
  }
  EXPECT_EQ(stats().averagings - before.averagings, 2u);
  EXPECT_EQ(stats().local_steps - before.local_steps, 8u);
}

TEST(DistributedOptimizer, SecondBackwardBeforeStepThrowsNamingTheParameter) {
  at::Tensor w = param({2}, 1.0);
  ::torch::OrderedDict<std::string, at::Tensor> named;
  named.insert("layer.w", w);
  DistributedOptimizer opt(
      sgd({w}), {.named_parameters = named, .op = ReduceOp::kAverage, .prefix = "twice"});
  w.sum().backward();
  try {
    w.sum().backward();
    ADD_FAILURE() << "second backward did not throw";
  } catch (const std::exception& e) {
    EXPECT_NE(
        std::string::npos,
        std::string(e.what()).find("parameter 'layer.w' (#0) got a second gradient before step()"))
        << e.what();
  }
  opt.step();  // the first gradient is still reduced; nothing is left in flight
  expect_runtime_healthy("healthy.twice");
}

TEST(BadInput, UnsupportedDtypeNamesTheParameterOnEveryRank) {
  at::Tensor ok = param({2});
  at::Tensor complex = at::zeros({2}, at::kComplexFloat).requires_grad_(true);
  ::torch::OrderedDict<std::string, at::Tensor> named;
  named.insert("fc.weight", ok);
  named.insert("fc.phase", complex);
  expect_error(
      [&] {
        DistributedOptimizer opt(sgd({ok, complex}), {.named_parameters = named});
      },
      StatusCode::kInvalidArgument,
      {"DistributedOptimizer: parameter 'fc.phase' (#1): dtype ComplexFloat is not supported"});
  expect_error(
      [&] { quorum::torch::allreduce_(at::zeros({2}, at::kBool), ReduceOp::kSum, "flags"); },
      StatusCode::kInvalidArgument, {"tensor 'flags'", "dtype Bool is not supported"});
  expect_runtime_healthy("healthy.dtype");
}

TEST(BadInput, OnlyOneRankWrongStillFailsEveryRankWithoutHanging) {
  // The last rank passes a double where the others pass a float.
  at::Tensor w =
      at::zeros({3}, r() == p() - 1 && p() > 1 ? at::kDouble : at::kFloat).requires_grad_(true);
  if (p() > 1) {
    expect_error([&] { DistributedOptimizer opt(sgd({w})); }, StatusCode::kMismatch,
                 {"parameter 'param.0' (#0): dtype f32 on rank",
                  "but f64 on rank " + std::to_string(p() - 1)});
  }
  // Only rank 0 has a bool parameter (unusable): every rank reports it, naming rank 0.
  at::Tensor flag = at::zeros({1}, r() == 0 ? at::kBool : at::kFloat);
  expect_error([&] { quorum::torch::broadcast_parameters(std::vector<at::Tensor>{flag}, 0); },
               StatusCode::kInvalidArgument,
               {"broadcast_parameters: parameter 'param.0' (#0)",
                p() > 1 ? "on rank 0: dtype Bool" : "dtype Bool"});
  expect_runtime_healthy("healthy.one_rank");
}

TEST(BadInput, NonContiguousTensors) {
  at::Tensor base = at::arange(6, at::kFloat).reshape({2, 3});
  at::Tensor transposed = base.t();  // [3,2], strides [1,3]
  ::torch::OrderedDict<std::string, at::Tensor> named;
  named.insert("proj.weight_t", transposed);
  expect_error(
      [&] { quorum::torch::broadcast_parameters(named, 0); }, StatusCode::kInvalidArgument,
      {"parameter 'proj.weight_t' (#0)", "not contiguous (strides [1,3] for shape [3,2])"});
  expect_error([&] { quorum::torch::allreduce_(transposed, ReduceOp::kSum, "t.inplace"); },
               StatusCode::kInvalidArgument, {"tensor 't.inplace'", "not contiguous"});
  // The out-of-place helper takes any strides.
  at::Tensor sum = quorum::torch::allreduce(transposed, ReduceOp::kSum, "t.copy");
  EXPECT_TRUE(sum.is_contiguous());
  EXPECT_FLOAT_EQ(3.0f * p(), sum[0][1].item<float>());  // transposed[0][1] == base[1][0] == 3
  // The optimizer copies gradients into its own buffers: a non-contiguous parameter is fine.
  at::Tensor leaf = at::zeros({3, 2}, at::kFloat).t().requires_grad_(true);
  ASSERT_FALSE(leaf.is_contiguous());
  DistributedOptimizer opt(sgd({leaf}), {.op = ReduceOp::kSum, .prefix = "nc"});
  (leaf * at::arange(6, at::kFloat).reshape({2, 3})).sum().backward();
  opt.step();
  EXPECT_FLOAT_EQ(-5.0f * p(), leaf[1][2].item<float>());
}

TEST(BadInput, NonCpuTensorsAreRefusedWithTheReason) {
  at::Tensor meta = at::zeros({2}, at::TensorOptions().dtype(at::kFloat).device(at::kMeta));
  expect_error([&] { quorum::torch::view_of(meta, "tensor 'm'"); }, StatusCode::kInvalidArgument,
               {"tensor 'm': it is on device meta; quorum takes CPU tensors"});
}

TEST(BadInput, ParameterListsThatDifferAcrossRanks) {
  if (p() < 2) GTEST_SKIP() << "needs two ranks";
  // An extra parameter on the last rank.
  std::vector<at::Tensor> params{param({4}), param({4, 2})};
  if (r() == p() - 1) params.push_back(param({7}));
  expect_error([&] { DistributedOptimizer opt(sgd(params)); }, StatusCode::kMismatch,
               {"parameter lists differ across ranks", "count 2 on rank",
                "but 3 on rank " + std::to_string(p() - 1), "'param.2' (#2) [7]"});
  // A shape that differs on rank 1.
  at::Tensor w = param({4, r() == 1 ? 3 : 2});
  ::torch::OrderedDict<std::string, at::Tensor> named;
  named.insert("fc2.weight", w);
  expect_error([&] { DistributedOptimizer opt(sgd({w}), {.named_parameters = named}); },
               StatusCode::kMismatch,
               {"parameter 'fc2.weight' (#0): shape [4,2] on rank", "but [4,3] on rank 1"});
  // Names that differ.
  ::torch::OrderedDict<std::string, at::Tensor> renamed;
  at::Tensor v = param({2});
  renamed.insert(r() == 0 ? "encoder.bias" : "decoder.bias", v);
  expect_error([&] { quorum::torch::broadcast_parameters(renamed, 0); }, StatusCode::kMismatch,
               {"parameter #0: named 'encoder.bias' on rank 0 but 'decoder.bias' on rank"});
  // A root that differs, then one that is out of range everywhere.
  expect_error(
      [&] { quorum::torch::broadcast_parameters(std::vector<at::Tensor>{v}, r() == 0 ? 0 : 1); },
      StatusCode::kMismatch, {"called with root 0 on rank 0 but root 1 on rank"});
  expect_error([&] { quorum::torch::broadcast_parameters(std::vector<at::Tensor>{v}, p()); },
               StatusCode::kInvalidArgument, {"root " + std::to_string(p()) + " is not a rank"});
  expect_runtime_healthy("healthy.lists");
}

TEST(Helpers, BroadcastParametersAndAllreduceAreExact) {
  at::Tensor a = at::full({5}, static_cast<double>(r()), at::kDouble);
  at::Tensor b = at::full({2, 3}, static_cast<int64_t>(10 + r()), at::kLong);
  ::torch::OrderedDict<std::string, at::Tensor> named;
  named.insert("a", a);
  named.insert("b", b);
  const int root = p() - 1;
  quorum::torch::broadcast_parameters(named, root);
  EXPECT_EQ(root, a[4].item<double>());
  EXPECT_EQ(10 + root, b[1][2].item<int64_t>());
  at::Tensor m = at::full({3}, static_cast<float>(r()), at::kFloat);
  EXPECT_FLOAT_EQ(p() - 1, quorum::torch::allreduce(m, ReduceOp::kMax)[0].item<float>());
  EXPECT_FLOAT_EQ(0, quorum::torch::allreduce(m, ReduceOp::kMin)[0].item<float>());
  quorum::torch::allreduce_(m, ReduceOp::kAverage, "avg.inplace");
  EXPECT_FLOAT_EQ((p() - 1) / 2.0f, m[2].item<float>());
  at::Tensor c = at::full({2}, r() == 0 ? 4.0 : -1.0, at::kFloat);
  quorum::torch::broadcast_(c, 0, "c");
  EXPECT_FLOAT_EQ(4.0f, c[1].item<float>());
}

}  // namespace
}  // namespace quorum

int main(int argc, char** argv) { return run_mpi_tests(argc, argv); }
