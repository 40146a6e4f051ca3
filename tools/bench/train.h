// train.h — synthetic data-parallel training with a real model's gradient list: quorum (each
// gradient enqueued as backward produces it) against raw MPI baselines with the same compute
// in the same run, interleaved step by step (see train_steps.h), plus the ideal step
// max(compute, fused bytes at the fused baseline's bandwidth). Collective over MPI_COMM_WORLD
// with quorum initialised; rank 0 prints the results to stdout and a progress line every few
// seconds to stderr; a wrong checked element is described on stderr by the rank that saw it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/bench/compute.h"
#include "tools/bench/models.h"

namespace quorum::bench {

struct TrainOptions {
  int steps = 20;
  int warmup = 2;
  ComputeSchedule compute{100, 0, {}, 1};  // seed shared with the gradient contents
  double progress_seconds = 3;
};

struct VariantResult {
  std::string name;
  double step_ms = 0;      // slowest rank's median
  double min_ms = 0;       // slowest rank's minimum
  double backward_ms = 0;  // median of the simulated backward
  double tail_ms = 0;      // median of step - backward: communication not hidden by compute
  // Median over steps of quorum's step over this variant's step of the same iteration (they run
  // back to back), the largest over ranks: steadier than a ratio of medians when the machine's
  // speed drifts during a run.
  double paired = 0;
};

// quorum's own counters over the timed steps, per step.
struct QuorumPerStep {
  double plans = 0, tensors = 0, fused_tensors = 0, errors = 0;
  double fast_plans = 0, fast_fallbacks = 0;  // plans run on the fast path; its fallbacks
  double control_bytes = 0;      // sent by rank 0
  double control_bytes_all = 0;  // summed over ranks
  double payload_bytes = 0;
  double collective_ms = 0;              // rank 0's engine inside collectives
  double negotiation_ms_per_tensor = 0;  // rank 0: enqueue to plan start, averaged
};

struct TrainResult {
  double units_per_ms = 0;              // busy-compute rate used on every rank
  double units_min = 0, units_max = 0;  // calibration spread over ranks
  std::vector<VariantResult> variants;  // quorum, mpi-per-tensor, mpi-fused, ideal
  QuorumPerStep quorum;
  double fused_allreduce_ms = 0;    // slowest rank's median of the fused MPI_Allreduce
  double fused_algbw = 0;           // GB/s
  size_t checked_tensors = 0;       // per step and variant
  long long wrong = 0;              // wrong checks and failed handles, all ranks
  std::vector<std::string> errors;  // this rank's first few
};

TrainResult run_train(const TrainOptions& options, const Model& model);

}  // namespace quorum::bench
