#include "tools/bench/train_steps.h"

#include <mpi.h>

#include <chrono>
#include <cstring>

namespace quorum::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Produces the gradients last to first, each after its share of `compute_ms`.
template <typename OnReady>
void backward(StepContext& ctx, double compute_ms, OnReady on_ready) {
  for (size_t i = ctx.grads.size(); i-- > 0;) {
    ctx.compute.run_ms(compute_ms * ctx.share[i]);
    ctx.grads.produce(i);
    on_ready(i);
  }
}

// Sum to Average, the same division quorum does (in float, rounded once).
void divide(float* x, size_t n, float ranks) {
  for (size_t k = 0; k < n; ++k) x[k] /= ranks;
}

}  // namespace

std::vector<double> compute_shares(const Model& model) {
  double total = 0;
  for (const Param& p : model.params) total += p.cost;
  std::vector<double> share;
  for (const Param& p : model.params) share.push_back(total > 0 ? p.cost / total : 0);
  return share;
}

StepTimes quorum_step(StepContext& ctx, double compute_ms, std::vector<std::string>* errors) {
  std::vector<Handle> handles(ctx.grads.size());
  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = Clock::now();
  backward(ctx, compute_ms, [&](size_t i) {
    const Tensor t = ctx.grads.tensor(i);
    handles[i] = enqueue_allreduce(ctx.model.params[i].name, t, t, ReduceOp::kAverage);
  });
  const auto t1 = Clock::now();
  for (size_t i = handles.size(); i-- > 0;) {
    if (Status s = quorum::wait(handles[i]); !s.is_ok()) errors->push_back(s.message());
  }
  mark_step();
  const auto t2 = Clock::now();
  return {seconds(t0, t2), seconds(t0, t1), 0};
}

StepTimes per_tensor_step(StepContext& ctx, double compute_ms) {
  int ranks = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = Clock::now();
  backward(ctx, compute_ms, [](size_t) {});
  const auto t1 = Clock::now();
  for (size_t i = ctx.grads.size(); i-- > 0;) {
    const size_t n = ctx.grads.numel(i);
    MPI_Allreduce(MPI_IN_PLACE, ctx.grads.data(i), static_cast<int>(n), MPI_FLOAT, MPI_SUM,
                  MPI_COMM_WORLD);
    divide(ctx.grads.data(i), n, static_cast<float>(ranks));
  }
  const auto t2 = Clock::now();
  return {seconds(t0, t2), seconds(t0, t1), 0};
}

StepTimes fused_step(StepContext& ctx, double compute_ms) {
  int ranks = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  float* fused = ctx.fusion_buffer.data();
  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = Clock::now();
  backward(ctx, compute_ms, [](size_t) {});
  const auto t1 = Clock::now();
  for (size_t i = 0; i < ctx.grads.size(); ++i) {
    std::memcpy(fused + ctx.grads.offset(i), ctx.grads.data(i), ctx.grads.numel(i) * sizeof(float));
  }
  const auto a0 = Clock::now();
  MPI_Allreduce(MPI_IN_PLACE, fused, static_cast<int>(ctx.grads.total_numel()), MPI_FLOAT, MPI_SUM,
                MPI_COMM_WORLD);
  const auto a1 = Clock::now();
  for (size_t i = 0; i < ctx.grads.size(); ++i) {
    const float* from = fused + ctx.grads.offset(i);
    float* to = ctx.grads.data(i);
    const auto r = static_cast<float>(ranks);
    for (size_t k = 0; k < ctx.grads.numel(i); ++k) to[k] = from[k] / r;
  }
  const auto t2 = Clock::now();
  return {seconds(t0, t2), seconds(t0, t1), seconds(a0, a1)};
}

}  // namespace quorum::bench
