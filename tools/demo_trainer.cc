// quorum-demo: data-parallel training of an MLP on a deterministic synthetic dataset. Every
// rank trains on its slice of each global batch; each layer's gradients go to
// quorum::enqueue_allreduce (Average) the moment backward produces them, and the step waits for
// all of them before the SGD update, as a DDP-style framework would. The loss printed is the
// global batch's mean, identical on every rank; replicas are checked to be bit-identical.
// Each step asks quorum::begin_step() what it does: under QUORUM_SYNC_MODE=periodic (or auto
// choosing it) a local step skips the gradient allreduces and applies this rank's own
// gradients, and a step that ends a segment averages the parameters afterwards.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <map>
#include <thread>
#include <cstdio>
#include <vector>

#include "quorum/quorum.h"
#include "tools/mlp.h"
#include "tools/mlp_tensors.h"

namespace {

using quorum::demo::Gaussian;
using quorum::demo::Layer;
using quorum::demo::Mlp;
using quorum::demo::make_dataset;
using quorum::demo::view;

bool ok(const quorum::Status& s, const char* what) {
  if (s.is_ok()) return true;
  std::fprintf(stderr, "rank %d: %s failed: %s\n", quorum::rank(), what, s.message().c_str());
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"quorum-demo: data-parallel MLP training through quorum (run under mpiexec)"};
  int steps = 300, batch = 256, samples = 8192, features = 16, hidden = 64, print_every = 10;
  float lr = 0.5f;
  uint64_t seed = 42;
  bool quiet = false;
  double compute_ms = 0, target_loss = 0;
  std::string straggler;
  app.add_option("--steps", steps, "training steps")->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "global batch size (divisible by the rank count)")->check(CLI::PositiveNumber);
  app.add_option("--samples", samples, "dataset size")->check(CLI::PositiveNumber);
  app.add_option("--hidden", hidden, "width of the two hidden layers")->check(CLI::PositiveNumber);
  app.add_option("--lr", lr, "SGD learning rate");
  app.add_option("--seed", seed, "dataset and initialisation seed");
  app.add_option("--print-every", print_every, "print the loss every N steps")->check(CLI::PositiveNumber);
  app.add_flag("--quiet", quiet, "print only the summary");
  app.add_option("--compute-ms", compute_ms,
                 "extra simulated compute per step (sleep), as if the model were larger")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--straggler", straggler,
                 "PROB:SLOWDOWN - each step, with probability PROB one random rank takes SLOWDOWN "
                 "times as long (e.g. 1:1.5)");
  app.add_option("--target-loss", target_loss,
                 "report the time until the running mean of the loss first reaches this value");
  CLI11_PARSE(app, argc, argv);

  double straggle_p = 0, slowdown = 1;
  if (!straggler.empty() &&
      (std::sscanf(straggler.c_str(), "%lf:%lf", &straggle_p, &slowdown) != 2 || straggle_p < 0 ||
       straggle_p > 1 || slowdown < 1)) {
    std::fprintf(stderr, "--straggler '%s': expected PROB:SLOWDOWN with 0<=PROB<=1, SLOWDOWN>=1\n",
                 straggler.c_str());
    return 2;
  }
  if (!ok(quorum::init(), "quorum::init")) return 1;
  const int rank = quorum::rank(), size = quorum::size();
  if (batch % size != 0) {
    if (rank == 0) std::fprintf(stderr, "--batch %d is not divisible by %d ranks\n", batch, size);
    quorum::shutdown();
    return 2;
  }

  std::vector<float> x, y;
  make_dataset(samples, features, seed, &x, &y);
  // Every rank initialises differently on purpose; rank 0's weights are broadcast, as DDP does.
  Mlp model({features, hidden, hidden, 1}, seed * 1000 + static_cast<uint64_t>(rank));
  for (Layer& l : model.layers()) {
    if (!ok(quorum::wait(quorum::enqueue_broadcast(l.name + ".weight", view(l.weight), 0)), "broadcast") ||
        !ok(quorum::wait(quorum::enqueue_broadcast(l.name + ".bias", view(l.bias), 0)), "broadcast")) {
      return 1;
    }
  }

  const int local = batch / size;
  std::vector<float> loss(1), fingerprint(2);
  if (rank == 0 && !quiet) {
    std::printf("quorum-demo: %d ranks, MLP %d-%d-%d-1, global batch %d (%d per rank), %d steps\n",
                size, features, hidden, hidden, batch, local, steps);
  }
  auto t0 = std::chrono::steady_clock::now();
  float first_loss = 0, last_loss = 0;
  bool identical = true;
  double reached_at = -1, running = 0;
  Gaussian dice(seed ^ 0xd1ceull);  // the same draws on every rank: who straggles when
  bool drifted = false;  // a local step since the last averaging
  for (int step = 0; step < steps; ++step) {
    auto step_start = std::chrono::steady_clock::now();
    const quorum::StepPlan plan = quorum::begin_step();
    int start = static_cast<int>((static_cast<int64_t>(step) * batch) % (samples - batch + 1)) + rank * local;
    loss[0] = model.forward(&x[static_cast<size_t>(start * features)], &y[static_cast<size_t>(start)], local);
    // Simulated extra compute, and this step's straggler (if any) taking `slowdown` times as long.
    double u = 0.5 * (1 + std::erf(dice.next() / std::sqrt(2.0)));       // uniform in (0,1)
    int slow = static_cast<int>(0.5 * (1 + std::erf(dice.next() / std::sqrt(2.0))) * size) % size;
    double compute_s =
        compute_ms / 1e3 +
        std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    double extra = compute_ms / 1e3 + (u < straggle_p && slow == rank ? (slowdown - 1) * compute_s : 0);
    if (extra > 0) std::this_thread::sleep_for(std::chrono::duration<double>(extra));
    std::vector<quorum::Handle> handles;
    handles.push_back(quorum::enqueue_allreduce("loss", view(loss), view(loss)));
    model.backward([&](Layer& l) {
      if (plan.local) return;  // this rank's own gradients, averaged in with the parameters
      handles.push_back(quorum::enqueue_allreduce(l.name + ".weight.grad", view(l.weight_grad),
                                                  view(l.weight_grad)));
      handles.push_back(quorum::enqueue_allreduce(l.name + ".bias.grad", view(l.bias_grad),
                                                  view(l.bias_grad)));
    });
    for (auto& h : handles) {
      if (!ok(quorum::wait(h), "gradient allreduce")) return 1;
    }
    model.sgd_step(lr);
    drifted = drifted || plan.local;
    if (plan.average) {
      if (!ok(quorum::average_parameters(quorum::demo::parameters(model)), "average_parameters")) {
        return 1;
      }
      drifted = false;
    }
    quorum::mark_step();
    if (step == 0) first_loss = loss[0];
    last_loss = loss[0];
    running = step == 0 ? loss[0] : 0.9 * running + 0.1 * loss[0];
    if (target_loss > 0 && reached_at < 0 && step >= 10 && running <= target_loss) {
      reached_at = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    if (rank == 0 && !quiet && (step % print_every == 0 || step == steps - 1)) {
      std::printf("step %4d  loss %.6f\n", step, loss[0]);
    }
  }
  // Late gradients of bounded rounds still in carries: fold them and apply them too.
  int64_t folded = 0;
  if (!ok(quorum::demo::flush_into(model, lr, &folded), "flush")) {
    return 1;
  }
  // Local steps since the last averaging: one more, so the replicas end identical.
  if (drifted && !ok(quorum::average_parameters(quorum::demo::parameters(model)),
                     "final average_parameters")) {
    return 1;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Bit-identical replicas: min and max of every rank's fingerprint agree.
  uint64_t fp = model.fingerprint();
  int64_t fp_lo = static_cast<int64_t>(fp & 0xffffffffu), fp_hi = static_cast<int64_t>(fp >> 32);
  std::vector<int64_t> mins{fp_lo, fp_hi}, maxs{fp_lo, fp_hi};
  quorum::Tensor tmin{mins.data(), quorum::DataType::kI64, {2}, quorum::Device::host()};
  quorum::Tensor tmax{maxs.data(), quorum::DataType::kI64, {2}, quorum::Device::host()};
  if (!ok(quorum::wait(quorum::enqueue_allreduce("fingerprint.min", tmin, tmin, quorum::ReduceOp::kMin)), "check") ||
      !ok(quorum::wait(quorum::enqueue_allreduce("fingerprint.max", tmax, tmax, quorum::ReduceOp::kMax)), "check")) {
    return 1;
  }
  identical = mins == maxs;

  quorum::Stats st = quorum::stats();
  if (rank == 0) {
    std::printf("final loss %.6f (first %.6f) after %d steps; replicas identical on all %d ranks: %s\n",
                last_loss, first_loss, steps, size, identical ? "yes" : "NO");
    std::printf("step time %.3f ms (mean over %d steps); wall time %.3f s\n", 1e3 * seconds / steps,
                steps, seconds);
    if (target_loss > 0) {
      if (reached_at >= 0) {
        std::printf("time to running loss <= %.4f: %.3f s\n", target_loss, reached_at);
      } else {
        std::printf("time to running loss <= %.4f: not reached\n", target_loss);
      }
    }
    if (st.bounded_plans > 0 || folded > 0) {
      std::printf("bounded rounds: %llu plans, %llu late requests answered, %lld late gradients "
                  "folded at the end, peak %.1f KB held\n",
                  static_cast<unsigned long long>(st.bounded_plans),
                  static_cast<unsigned long long>(st.late_answered), static_cast<long long>(folded),
                  st.bounded_peak_bytes / 1e3);
    }
    std::printf("quorum counters (rank 0): %llu plans, %llu tensors, %llu of them fused, %llu errors, "
                "%.2f MB reduced, %.3f s in collectives, %.1f KB control traffic\n",
                static_cast<unsigned long long>(st.plans), static_cast<unsigned long long>(st.tensors),
                static_cast<unsigned long long>(st.fused_tensors),
                static_cast<unsigned long long>(st.errors), st.bytes / 1e6, st.collective_seconds,
                st.control_bytes_sent / 1e3);
    if (st.local_steps > 0 || st.averagings > 0) {
      std::printf("periodic averaging (rank 0): %llu local steps, %llu averagings\n",
                  static_cast<unsigned long long>(st.local_steps),
                  static_cast<unsigned long long>(st.averagings));
    }
  }
  if (!ok(quorum::shutdown(), "quorum::shutdown")) return 1;
  return identical ? 0 : 3;
}
