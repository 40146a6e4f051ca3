#include "tools/bench/train.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "quorum/quorum.h"
#include "tools/bench/gradients.h"
#include "tools/bench/stats.h"
#include "tools/bench/table.h"
#include "tools/bench/train_steps.h"
#include "tools/bench/units.h"

namespace quorum::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReportedErrors = 5;

enum Variant { kQuorum, kPerTensor, kFused, kVariants };
constexpr const char* kVariantNames[] = {"quorum", "mpi-per-tensor", "mpi-fused", "ideal"};

// Every rank calibrates at once, then all use the fastest rank's rate: other load on the
// machine only ever lowers a measurement, and one rate makes "X ms of compute" the same work on
// every rank (X ms on an undisturbed core; longer where the core is shared, as real compute).
void calibrate(TrainResult* r) {
  MPI_Barrier(MPI_COMM_WORLD);
  const double mine = BusyCompute::measure_units_per_ms();
  double lo = 0, hi = 0;
  MPI_Allreduce(&mine, &lo, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&mine, &hi, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  r->units_per_ms = hi;
  r->units_min = lo;
  r->units_max = hi;
}

struct Samples {
  std::vector<double> step_ms, backward_ms, tail_ms, allreduce_ms;
  void add(const StepTimes& t) {
    step_ms.push_back(t.step_s * 1e3);
    backward_ms.push_back(t.backward_s * 1e3);
    tail_ms.push_back((t.step_s - t.backward_s) * 1e3);
    allreduce_ms.push_back(t.allreduce_s * 1e3);
  }
};

class ErrorLog {
 public:
  explicit ErrorLog(TrainResult* r) : r_(r) {}
  void add(const char* variant, int step, const std::string& what) {
    if (r_->errors.size() < kReportedErrors) {
      char where[96];
      std::snprintf(where, sizeof where, "rank %d: step %d, %s: ", quorum::rank(), step, variant);
      r_->errors.push_back(where + what);
      std::fprintf(stderr, "quorum-bench: %s\n", r_->errors.back().c_str());
    }
    ++count_;
  }
  long long count() const { return count_; }

 private:
  TrainResult* r_;
  long long count_ = 0;
};

void progress(int step, const TrainOptions& o, double elapsed, const StepTimes (&last)[kVariants]) {
  const bool warm = step < o.warmup;
  std::fprintf(stderr,
               "quorum-bench train: %s step %d/%d, %.0f s elapsed; last step: quorum %.1f ms, "
               "per-tensor %.1f ms, fused %.1f ms\n",
               warm ? "warm-up" : "timed", warm ? step + 1 : step - o.warmup + 1,
               warm ? o.warmup : o.steps, elapsed, last[kQuorum].step_s * 1e3,
               last[kPerTensor].step_s * 1e3, last[kFused].step_s * 1e3);
}

QuorumPerStep per_step(const Stats& a, const Stats& b, int steps) {
  const double n = std::max(steps, 1);
  QuorumPerStep q;
  q.plans = static_cast<double>(b.plans - a.plans) / n;
  q.fast_plans = static_cast<double>(b.fast_plans - a.fast_plans) / n;
  q.fast_fallbacks = static_cast<double>(b.fast_fallbacks - a.fast_fallbacks) / n;
  q.tensors = static_cast<double>(b.tensors - a.tensors) / n;
  q.fused_tensors = static_cast<double>(b.fused_tensors - a.fused_tensors) / n;
  q.errors = static_cast<double>(b.errors - a.errors) / n;
  q.control_bytes = static_cast<double>(b.control_bytes_sent - a.control_bytes_sent) / n;
  q.payload_bytes = static_cast<double>(b.bytes - a.bytes) / n;
  q.collective_ms = (b.collective_seconds - a.collective_seconds) * 1e3 / n;
  const double tensors = static_cast<double>(b.tensors - a.tensors);
  q.negotiation_ms_per_tensor =
      tensors > 0 ? (b.negotiation_seconds - a.negotiation_seconds) * 1e3 / tensors : 0;
  return q;
}

void print_results(const TrainResult& r, int steps, size_t fused_bytes) {
  const Table table({{"variant", 15, false, true},
                     {"step_ms", 9},
                     {"min_ms", 9},
                     {"backward_ms", 11},
                     {"tail_ms", 9},
                     {"quorum/this", 11},
                     {"paired", 7}});
  std::printf(
      "#\n# median step time over %d steps (slowest rank); tail = step - backward, the\n"
      "# communication compute did not hide; ideal = max(compute, fused bytes at mpi-fused's"
      " bandwidth);\n# paired = median over steps of quorum's step / this variant's step of the"
      " same iteration\n",
      steps);
  std::fputs(table.header().c_str(), stdout);
  const double q = r.variants.front().step_ms;
  for (const VariantResult& v : r.variants) {
    std::fputs(table
                   .row({v.name, fixed(v.step_ms, 2), fixed(v.min_ms, 2), fixed(v.backward_ms, 2),
                         fixed(v.tail_ms, 2), fixed(v.step_ms > 0 ? q / v.step_ms : 0, 3),
                         fixed(v.paired, 3)})
                   .c_str(),
               stdout);
  }
  const QuorumPerStep& s = r.quorum;
  std::printf(
      "#\n# quorum per step: %.1f plans (%.1f on the fast path, %.2f fallbacks), %.1f tensors "
      "(%.1f fused), %.1f errors; %s payload\n",
      s.plans, s.fast_plans, s.fast_fallbacks, s.tensors, s.fused_tensors, s.errors,
      format_bytes(s.payload_bytes).c_str());
  std::printf("# control plane per step: %s sent by rank 0, %s by all ranks\n",
              format_bytes(s.control_bytes).c_str(), format_bytes(s.control_bytes_all).c_str());
  std::printf(
      "# rank 0 engine: %.2f ms/step in collectives, negotiation %.3f ms per tensor "
      "(enqueue to plan start)\n",
      s.collective_ms, s.negotiation_ms_per_tensor);
  std::printf("# mpi-fused: one MPI_Allreduce of %s in %.2f ms = %.3f GB/s algbw\n",
              format_bytes(static_cast<double>(fused_bytes)).c_str(), r.fused_allreduce_ms,
              r.fused_algbw);
  std::printf(
      "# compute: %.0f work units per ms on every rank (calibrated: %.0f .. %.0f over "
      "ranks)\n",
      r.units_per_ms, r.units_min, r.units_max);
  std::printf("# checked: %zu tensors, every element, after every step of every variant\n",
              r.checked_tensors);
  std::fflush(stdout);
}

}  // namespace

TrainResult run_train(const TrainOptions& o, const Model& model) {
  const int rank = quorum::rank(), ranks = quorum::size();
  TrainResult result;
  calibrate(&result);
  BusyCompute compute(result.units_per_ms);

  Gradients grads(model, o.compute.seed, rank, ranks);
  std::vector<float> fusion_buffer(grads.total_numel());
  const std::vector<double> share = compute_shares(model);
  StepContext ctx{model, share, compute, grads, fusion_buffer};
  result.checked_tensors = grads.checked_count();

  const int total_steps = o.warmup + o.steps;
  const std::vector<double> compute_ms = step_compute_ms(o.compute, rank, total_steps);
  Samples samples[kVariants];
  StepTimes last[kVariants];
  ErrorLog errors(&result);
  Stats before = quorum::stats();
  const auto start = Clock::now();
  auto last_progress = start;
  for (int step = 0; step < total_steps; ++step) {
    if (step == o.warmup) before = quorum::stats();
    std::vector<std::string> failed;
    last[kQuorum] = quorum_step(ctx, compute_ms[step], &failed);
    for (const std::string& f : failed) errors.add("quorum", step, f);
    if (auto bad = grads.check(model.params)) errors.add("quorum", step, *bad);

    last[kPerTensor] = per_tensor_step(ctx, compute_ms[step]);
    if (auto bad = grads.check(model.params)) errors.add("mpi-per-tensor", step, *bad);

    last[kFused] = fused_step(ctx, compute_ms[step]);
    if (auto bad = grads.check(model.params)) errors.add("mpi-fused", step, *bad);

    if (step >= o.warmup) {
      for (int v = 0; v < kVariants; ++v) samples[v].add(last[v]);
    }
    const auto now = Clock::now();
    if (rank == 0 &&
        std::chrono::duration<double>(now - last_progress).count() >= o.progress_seconds) {
      progress(step, o, std::chrono::duration<double>(now - start).count(), last);
      last_progress = now;
    }
  }
  const Stats after = quorum::stats();

  // Per-rank medians, then the slowest rank's.
  const double fused_ar_ms = median(samples[kFused].allreduce_ms);
  std::vector<double> ideal_ms;
  for (double b : samples[kFused].backward_ms) ideal_ms.push_back(std::max(b, fused_ar_ms));
  std::vector<double> local;
  for (const Samples& s : samples) {
    local.push_back(median(s.step_ms));
    local.push_back(summarize(s.step_ms).min);
    local.push_back(median(s.backward_ms));
    local.push_back(median(s.tail_ms));
  }
  std::vector<double> ideal_tail_ms;
  for (size_t s = 0; s < ideal_ms.size(); ++s) {
    ideal_tail_ms.push_back(ideal_ms[s] - samples[kFused].backward_ms[s]);
  }
  const Summary ideal = summarize(ideal_ms);
  local.insert(local.end(), {ideal.median, ideal.min, median(samples[kFused].backward_ms),
                             median(ideal_tail_ms), fused_ar_ms});
  // Paired ratios, the last kVariants + 1 entries (ideal's last).
  for (int v = 0; v <= kVariants; ++v) {
    local.push_back(
        paired_median(samples[kQuorum].step_ms, v < kVariants ? samples[v].step_ms : ideal_ms));
  }
  const std::vector<double> worst = max_to_root(local);
  const size_t fused_at = static_cast<size_t>(kVariants + 1) * 4;
  for (int v = 0; v <= kVariants; ++v) {
    const double* w = &worst[static_cast<size_t>(v) * 4];
    const double paired = worst[fused_at + 1 + static_cast<size_t>(v)];
    result.variants.push_back({kVariantNames[v], w[0], w[1], w[2], w[3], paired});
  }
  const size_t fused_bytes = grads.total_numel() * sizeof(float);
  result.fused_allreduce_ms = worst[fused_at];
  result.fused_algbw = result.fused_allreduce_ms > 0
                           ? static_cast<double>(fused_bytes) / (result.fused_allreduce_ms * 1e6)
                           : 0;

  result.quorum = per_step(before, after, o.steps);
  result.quorum.control_bytes_all = sum_to_root({result.quorum.control_bytes})[0];
  result.wrong = sum_everywhere(errors.count());
  if (rank == 0) print_results(result, o.steps, fused_bytes);
  return result;
}

}  // namespace quorum::bench
