// train_steps.h — one synthetic training step in each of the ways train compares:
//   quorum      each gradient enqueued (Average) the moment backward produces it; the step
//               waits for every handle, then quorum::mark_step()
//   per-tensor  backward first, then one raw MPI_Allreduce (Sum, then / ranks) per tensor
//   fused       backward first, then all gradients packed, one raw MPI_Allreduce, unpacked
// Backward is simulated: for each parameter, last to first, its share of the step's compute
// (calibrated busy work), then its gradient is written. Each call is collective over
// MPI_COMM_WORLD and starts with a barrier that is not part of the step's time.
#pragma once

#include <string>
#include <vector>

#include "quorum/quorum.h"
#include "tools/bench/compute.h"
#include "tools/bench/gradients.h"
#include "tools/bench/models.h"

namespace quorum::bench {

struct StepTimes {
  double step_s = 0;       // barrier release to the last gradient reduced
  double backward_s = 0;   // the simulated backward alone (compute + gradient writes)
  double allreduce_s = 0;  // fused: the one MPI_Allreduce alone
};

// What every variant shares. Not owned; one thread.
struct StepContext {
  const Model& model;
  const std::vector<double>& share;  // fraction of the step's compute per parameter
  BusyCompute& compute;
  Gradients& grads;
  std::vector<float>& fusion_buffer;  // fused variant: total_numel floats
};

// The compute share of each parameter: its cost over the model's total.
std::vector<double> compute_shares(const Model& model);

// quorum's step; a failed handle's message is appended to `errors`.
StepTimes quorum_step(StepContext& ctx, double compute_ms, std::vector<std::string>* errors);
StepTimes per_tensor_step(StepContext& ctx, double compute_ms);
StepTimes fused_step(StepContext& ctx, double compute_ms);

}  // namespace quorum::bench
