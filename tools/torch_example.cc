// quorum-torch-example: data-parallel training of a small libtorch MLP through
// quorum::torch::DistributedOptimizer, under mpiexec. Every rank trains on its slice of each
// global batch; gradients are averaged as autograd produces them; the printed loss is the global
// batch's mean, identical on every rank. --local trains the same global batch in this one
// process with plain libtorch and no quorum at all (the reference for equivalence, and the
// compute-only baseline for the DDP comparison, see scripts/compare_ddp.sh).
//
// Dataset and initialisation use only torch's seeded CPU generator, so tools/ddp_baseline.py
// builds bit-for-bit the same data and starting weights in PyTorch.
// The modules used, not <torch/torch.h>: a third less compile time on the 2-core machine.
#include <ATen/Parallel.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "quorum/quorum.h"
#include "quorum/torch.h"

namespace {

struct Config {
  int steps = 200, batch = 256, samples = 8192, features = 32, hidden = 128, warmup = 10;
  int print_every = 20, threads = 1;
  double lr = 0.1;
  uint64_t seed = 42;
  bool local = false, quiet = false;
};

// A fixed random "teacher" labels Gaussian inputs by the sign of a tanh layer's output: learnable,
// not linearly separable. Same calls, same order as ddp_baseline.py.
void make_dataset(const Config& c, torch::Tensor* x, torch::Tensor* y) {
  torch::manual_seed(c.seed);
  *x = torch::randn({c.samples, c.features});
  torch::Tensor w1 = torch::randn({c.features, 32});
  torch::Tensor b1 = torch::randn({32});
  torch::Tensor w2 = torch::randn({32, 1});
  torch::Tensor h = torch::tanh(x->mm(w1) / std::sqrt(static_cast<double>(c.features)) + b1);
  *y = (h.mm(w2) > 0).to(torch::kFloat);
}

torch::nn::Sequential make_model(const Config& c) {
  // Layers made one statement at a time: the order of function arguments' evaluation is
  // unspecified, and it decides which layer draws which initial weights.
  torch::nn::Linear l1(c.features, c.hidden);
  torch::nn::Linear l2(c.hidden, c.hidden);
  torch::nn::Linear l3(c.hidden, 1);
  return torch::nn::Sequential(l1, torch::nn::Tanh(), l2, torch::nn::Tanh(), l3);
}

// FNV-1a over every parameter's bytes: equal on two ranks iff the replicas are identical.
int64_t fingerprint(torch::nn::Module& model) {
  uint64_t h = 1469598103934665603ull;
  for (const auto& p : model.parameters()) {
    torch::Tensor t = p.detach().contiguous();
    auto* b = static_cast<const unsigned char*>(t.data_ptr());
    for (size_t i = 0; i < t.nbytes(); ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  return static_cast<int64_t>(h >> 1);
}

// True when `t` holds the same values on every rank (a Min and a Max allreduce agree).
bool same_everywhere(const torch::Tensor& t, const std::string& name) {
  torch::Tensor lo = quorum::torch::allreduce(t, quorum::ReduceOp::kMin, name + ".min");
  torch::Tensor hi = quorum::torch::allreduce(t, quorum::ReduceOp::kMax, name + ".max");
  return torch::equal(lo, hi);
}

int train(const Config& c) {
  const int rank = c.local ? 0 : quorum::rank();
  const int size = c.local ? 1 : quorum::size();
  if (c.batch % size != 0 || c.batch > c.samples) {
    if (rank == 0)
      std::fprintf(stderr, "--batch %d must divide by %d ranks and fit --samples\n", c.batch, size);
    return 2;
  }
  torch::set_num_threads(c.threads);
  torch::Tensor x, y;
  make_dataset(c, &x, &y);
  // Ranks start from different weights on purpose; broadcast_parameters makes rank 0's (the
  // single-process run's) the start everywhere, as DDP does.
  torch::manual_seed(c.seed + 1 + static_cast<uint64_t>(rank));
  torch::nn::Sequential model = make_model(c);
  auto sgd =
      std::make_shared<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(c.lr));
  std::unique_ptr<quorum::torch::DistributedOptimizer> dist;
  if (!c.local) {
    quorum::torch::broadcast_parameters(model->named_parameters(), 0);
    quorum::torch::DistributedOptimizer::Options o;
    o.named_parameters = model->named_parameters();
    dist = std::make_unique<quorum::torch::DistributedOptimizer>(sgd, o);
  }
  const int local = c.batch / size;
  if (rank == 0 && !c.quiet) {
    std::printf(
        "quorum-torch-example: %s, MLP %d-%d-%d-1, global batch %d (%d per rank), %d steps, "
        "%d torch thread(s)\n",
        c.local ? "1 process, no quorum (--local)" : (std::to_string(size) + " ranks").c_str(),
        c.features, c.hidden, c.hidden, c.batch, local, c.steps, c.threads);
  }
  // The global loss is averaged across ranks only where it is printed, so the timed steps do the
  // same work as the DDP baseline's.
  auto global_loss = [&](const torch::Tensor& loss) {
    return c.local ? loss.item<double>()
                   : quorum::torch::allreduce(loss.detach(), quorum::ReduceOp::kAverage, "loss")
                         .item<double>();
  };
  std::vector<double> step_ms;
  double first = 0, last = 0;
  for (int step = 0; step < c.steps; ++step) {
    auto t0 = std::chrono::steady_clock::now();
    int64_t start =
        (static_cast<int64_t>(step) * c.batch) % (c.samples - c.batch + 1) + rank * local;
    torch::Tensor xb = x.narrow(0, start, local), yb = y.narrow(0, start, local);
    sgd->zero_grad();
    torch::Tensor loss = torch::binary_cross_entropy_with_logits(model->forward(xb), yb);
    loss.backward();
    if (dist) {
      dist->step();
    } else {
      sgd->step();
    }
    auto t1 = std::chrono::steady_clock::now();
    if (step >= c.warmup)
      step_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    const bool print = step % c.print_every == 0 || step == c.steps - 1;
    if (print) {
      double l = global_loss(loss);
      if (step == 0) first = l;
      last = l;
      if (rank == 0 && !c.quiet) std::printf("step %4d  loss %.6f\n", step, l);
    }
  }
  bool loss_same = c.local || same_everywhere(torch::tensor({last}, torch::kDouble), "check.loss");
  bool replicas_same =
      c.local ||
      same_everywhere(torch::tensor({fingerprint(*model)}, torch::kLong), "check.params");
  std::sort(step_ms.begin(), step_ms.end());
  double median = step_ms.empty() ? 0 : step_ms[step_ms.size() / 2];
  double mean = 0;
  for (double v : step_ms) mean += v / static_cast<double>(step_ms.size());
  if (rank == 0) {
    std::printf(
        "final loss %.6f (first %.6f) after %d steps; loss identical on all %d ranks: %s; "
        "replicas identical: %s\n",
        last, first, c.steps, size, loss_same ? "yes" : "NO", replicas_same ? "yes" : "NO");
    std::printf("step time: median %.3f ms, mean %.3f ms over %zu steps (after %d warmup)\n",
                median, mean, step_ms.size(), c.warmup);
    if (!c.local) {
      quorum::Stats st = quorum::stats();
      std::printf(
          "quorum counters (rank 0): %llu plans, %llu tensors (%llu fused), %.3f s in "
          "collectives, %.3f s negotiation summed over tensors\n",
          static_cast<unsigned long long>(st.plans), static_cast<unsigned long long>(st.tensors),
          static_cast<unsigned long long>(st.fused_tensors), st.collective_seconds,
          st.negotiation_seconds);
    }
  }
  return loss_same && replicas_same ? 0 : 3;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "quorum-torch-example: data-parallel libtorch MLP through quorum (run under mpiexec)"};
  Config c;
  app.add_option("--steps", c.steps, "training steps")->check(CLI::PositiveNumber);
  app.add_option("--batch", c.batch, "global batch size (divisible by the rank count)")
      ->check(CLI::PositiveNumber);
  app.add_option("--samples", c.samples, "dataset size")->check(CLI::PositiveNumber);
  app.add_option("--features", c.features, "input width")->check(CLI::PositiveNumber);
  app.add_option("--hidden", c.hidden, "width of the two hidden layers")
      ->check(CLI::PositiveNumber);
  app.add_option("--lr", c.lr, "SGD learning rate");
  app.add_option("--seed", c.seed, "dataset and initialisation seed");
  app.add_option("--warmup", c.warmup, "steps left out of the step time")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--print-every", c.print_every, "average and print the loss every N steps")
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", c.threads, "torch intra-op threads per process")
      ->check(CLI::PositiveNumber);
  app.add_flag("--local", c.local,
               "train the global batch in this process with plain libtorch, no quorum");
  app.add_flag("--quiet", c.quiet, "print only the summary");
  CLI11_PARSE(app, argc, argv);

  if (c.local) return train(c);
  if (quorum::Status s = quorum::init(); !s.is_ok()) {
    std::fprintf(stderr, "quorum::init failed: %s\n", s.message().c_str());
    return 1;
  }
  int rc = 0;
  try {
    rc = train(c);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", quorum::rank(), e.what());
    rc = 1;
  }
  if (quorum::Status s = quorum::shutdown(); !s.is_ok()) {
    std::fprintf(stderr, "quorum::shutdown failed: %s\n", s.message().c_str());
    return rc ? rc : 1;
  }
  return rc;
}
