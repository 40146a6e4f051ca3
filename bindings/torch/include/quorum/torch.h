// quorum/torch.h — data-parallel training with libtorch through quorum (libquorum_torch).
//
//   quorum::init();                                         // under mpiexec, on every rank
//   auto model = MyNet();
//   quorum::torch::broadcast_parameters(model->named_parameters(), 0);   // same start everywhere
//   quorum::torch::DistributedOptimizer opt(
//       std::make_shared<torch::optim::SGD>(model->parameters(), 0.1),
//       {.named_parameters = model->named_parameters()});
//   for (...) {
//     opt.zero_grad();
//     auto loss = loss_fn(model->forward(x_local), y_local);
//     loss.backward();   // each gradient is enqueued (Average) the moment autograd produces it
//     opt.step();        // waits for the averaged gradients, then the wrapped optimizer steps
//   }
//   quorum::shutdown();
//
// Tensors: CPU, strided, of a dtype quorum reduces (float16, bfloat16, float32, float64, int32,
// int64, uint8). CUDA tensors are rejected with an error saying so: the binding does not route
// them to quorum's NCCL backend yet (Debian's libtorch, which it is built against, is CPU-only).
//
// Errors. libtorch reports errors by exception and Optimizer::step() has no other channel, so
// this binding throws quorum::torch::Error (a std::runtime_error carrying the quorum StatusCode)
// where the C++ API returns a Status. Messages name the parameter, e.g.
//   "DistributedOptimizer: parameter 'fc2.weight' (#2): shape [64,16] on rank 0 but [64,17] on
//    rank 1".
// Collective calls (the constructor, broadcast_parameters) check the parameter lists of all
// ranks first, so a list that differs across ranks fails the same way on every rank instead of
// hanging.
//
// Threads: as libtorch; one DistributedOptimizer is used by one training thread. Gradient hooks
// run on whatever thread autograd runs them on.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/optim/optimizer.h>
#include <torch/ordered_dict.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "quorum/quorum.h"

#define QUORUM_TORCH_EXPORT __attribute__((visibility("default")))

namespace quorum::torch {

using NamedParameters = ::torch::OrderedDict<std::string, at::Tensor>;

class QUORUM_TORCH_EXPORT Error : public std::runtime_error {
 public:
  Error(StatusCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  explicit Error(const Status& status) : Error(status.code(), status.message()) {}
  StatusCode code() const { return code_; }

 private:
  StatusCode code_;
};

// quorum's dtype for a libtorch scalar type; throws Error (kInvalidArgument) for others.
QUORUM_TORCH_EXPORT DataType to_quorum_dtype(at::ScalarType type, const std::string& what);

// A quorum view of `tensor`'s memory (no copy). Throws Error naming `what` unless `tensor` is a
// defined, CPU, strided, contiguous tensor of a supported dtype. The tensor must outlive every
// operation given the view.
QUORUM_TORCH_EXPORT Tensor view_of(const at::Tensor& tensor, const std::string& what);

// Blocking collectives on one tensor. `name` identifies the tensor across ranks; when empty,
// "quorum.torch.allreduce.<n>" / "quorum.torch.broadcast.<n>" with a per-process counter, which
// is only deterministic when every rank makes the same sequence of this binding's calls.
//
// In place: `tensor` must be contiguous (see view_of).
QUORUM_TORCH_EXPORT void allreduce_(const at::Tensor& tensor, ReduceOp op = ReduceOp::kAverage,
                                    const std::string& name = "");
// Out of place: any strides; returns a new contiguous tensor.
QUORUM_TORCH_EXPORT at::Tensor allreduce(const at::Tensor& tensor, ReduceOp op = ReduceOp::kAverage,
                                         const std::string& name = "");
// In place: replaces `tensor` on every rank with root's.
QUORUM_TORCH_EXPORT void broadcast_(const at::Tensor& tensor, int root,
                                    const std::string& name = "");

// Collective: replaces every parameter on every rank with root's, as DDP does at start. Checks
// first that all ranks pass the same list (count, names, dtypes, shapes) of contiguous CPU
// tensors; any difference throws the same Error on every rank. Tensors are named
// "param.<index>" (the same on every rank); modifies them without recording autograd history.
QUORUM_TORCH_EXPORT void broadcast_parameters(const NamedParameters& params, int root = 0);
QUORUM_TORCH_EXPORT void broadcast_parameters(const std::vector<at::Tensor>& params, int root = 0);

// Wraps a libtorch optimizer for data-parallel training. For every parameter of the wrapped
// optimizer that requires grad, a hook enqueues the gradient (copied into a buffer this object
// owns) for reduction as soon as autograd produces it, so communication overlaps the rest of
// backward; step() waits for all of them, writes the reduced gradients to the parameters'
// .grad and runs the wrapped optimizer's step.
//
// One backward() per step(): a second gradient for a parameter before step() throws. A
// parameter that gets no gradient in a step on some rank contributes zeros there, so every
// rank reduces every parameter every step and nothing waits for a gradient that never comes
// (a parameter no rank touched ends the step with a zero .grad).
//
// Periodic model averaging (QUORUM_SYNC_MODE=periodic, or when auto picks it) needs no change
// in the loop: each step asks quorum::begin_step() what it is (at its first gradient, or in
// step() if none came); in a local step nothing is enqueued, the wrapped optimizer steps on
// this rank's own .grad, and at the end of each period step() averages the parameters
// (quorum::average_parameters, named "<prefix>.<parameter name>"; exact, the same on every rank
// after it). The wrapped optimizer's own state (e.g. momentum) stays per rank.
class QUORUM_TORCH_EXPORT DistributedOptimizer {
 public:
  struct Options {
    // Parameters by name, for messages and cross-rank checks (e.g. model->named_parameters());
    // optional: unnamed parameters are called "param.<index>".
    NamedParameters named_parameters = NamedParameters();
    // Sum or Average (the default: the gradient of the global batch's mean loss).
    ReduceOp op = ReduceOp::kAverage;
    // Gradient tensors are named "<prefix>.<index>"; two optimizers used at the same time need
    // different prefixes.
    std::string prefix = "grad";
  };

  // Collective: every rank constructs its optimizer at the same point, with the same parameter
  // list (checked; any difference throws the same Error on every rank). quorum::init() first.
  explicit DistributedOptimizer(std::shared_ptr<::torch::optim::Optimizer> optimizer);
  DistributedOptimizer(std::shared_ptr<::torch::optim::Optimizer> optimizer, Options options);
  // Removes the hooks and waits for gradients still in flight.
  ~DistributedOptimizer();
  DistributedOptimizer(const DistributedOptimizer&) = delete;
  DistributedOptimizer& operator=(const DistributedOptimizer&) = delete;

  // synchronize(), then the wrapped optimizer's step() and quorum::mark_step(). Closures
  // (LBFGS-style re-evaluation) are not supported: they would run backward again.
  at::Tensor step();
  // Enqueues zeros for parameters that got no gradient, waits for every reduction and writes
  // the results to .grad. Throws Error naming the parameter if a reduction failed.
  void synchronize();
  // Bounded rounds: when this rank fell behind (quorum::rounds_behind() > 0), takes the result
  // of the oldest round that ran without it for every parameter (quorum::enqueue_catch_up: no
  // gradient of this rank's added) and runs step() on them; returns true, and the caller skips
  // this step's forward and backward. False, with nothing done, when not behind. A parameter
  // with no missed round contributes zeros in this step, as one without a gradient does.
  //   if (!opt.catch_up()) { model->forward(x).backward(); opt.step(); }
  bool catch_up();
  void zero_grad() { optimizer_->zero_grad(); }
  ::torch::optim::Optimizer& optimizer() { return *optimizer_; }

 private:
  struct State;  // per-parameter buffers, handles and hooks
  std::shared_ptr<::torch::optim::Optimizer> optimizer_;
  std::unique_ptr<State> state_;
};

}  // namespace quorum::torch
