// DistributedOptimizer: gradient hooks enqueue, step() waits. Periodic model averaging: the
// first gradient of a step (or step(), if none came) asks begin_step() what the step is; a local
// step leaves .grad to autograd and step() averages the parameters when the plan says so.
//
// The hook receives the gradient before autograd accumulates it into .grad, and that tensor may
// be a broadcast view or become .grad itself, so it is copied into a contiguous buffer this
// object owns and the buffer is reduced in place; step() copies the result into .grad. The
// copy is one memcpy per parameter per step, cheap next to the reduction, and keeps the
// engine's memory out of autograd's hands.
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>

#include <mutex>

#include "bindings/torch/param_check.h"
#include "bindings/torch/tensor_desc.h"
#include "quorum/torch.h"

namespace quorum::torch {

struct DistributedOptimizer::State {
  struct Param {
    at::Tensor tensor;
    std::string name;         // the user's, for messages
    std::string tensor_name;  // quorum's: "<prefix>.<index>"
    at::Tensor buffer;        // contiguous, same dtype and shape
    Tensor view;              // of buffer
    Handle handle;
    bool pending = false;  // enqueued since the last synchronize()
    unsigned hook = 0;
  };
  ReduceOp op = ReduceOp::kAverage;
  std::string prefix;
  std::mutex mu;  // pending/handle/plan: hooks may run on autograd's threads
  std::vector<Param> params;
  StepPlan plan;       // this step's, from begin_step() at its first gradient or at step()
  bool begun = false;

  // Under `mu`.
  void ensure_begun() {
    if (begun) return;
    plan = begin_step();
    begun = true;
  }

  void on_grad(size_t i, const at::Tensor& grad) {
    Param& p = params[i];
    std::lock_guard lk(mu);
    ensure_begun();
    if (plan.local) return;  // a local step: autograd accumulates .grad as without quorum
    if (p.pending) {
      throw Error(StatusCode::kFailedPrecondition,
                  "DistributedOptimizer: " + torch_binding::subject(p.name, i) +
                      " got a second gradient before step(); one backward() per step() is "
                      "supported");
    }
    {
      at::NoGradGuard no_grad;
      p.buffer.copy_(grad);
    }
    p.handle = enqueue_allreduce(p.tensor_name, p.view, p.view, op);
    p.pending = true;
  }

  // Waits for everything enqueued; returns the first failure as a message naming its parameter.
  Status wait_all() {
    Status first;
    for (size_t i = 0; i < params.size(); ++i) {
      Param& p = params[i];
      if (!p.pending) continue;
      Status s = wait(p.handle);
      p.pending = false;
      if (!s.is_ok() && first.is_ok()) {
        first = Status(s.code(), "DistributedOptimizer: gradient of " +
                                     torch_binding::subject(p.name, i) + ": " + s.message());
      }
    }
    return first;
  }
};

DistributedOptimizer::DistributedOptimizer(std::shared_ptr<::torch::optim::Optimizer> optimizer)
    : DistributedOptimizer(std::move(optimizer), Options{}) {}

DistributedOptimizer::DistributedOptimizer(std::shared_ptr<::torch::optim::Optimizer> optimizer,
                                           Options options)
    : optimizer_(std::move(optimizer)), state_(std::make_unique<State>()) {
  const char* what = "DistributedOptimizer";
  if (!optimizer_)
    throw Error(StatusCode::kInvalidArgument, "DistributedOptimizer: optimizer is null");
  std::vector<at::Tensor> tensors;
  for (const auto& group : optimizer_->param_groups()) {
    for (const at::Tensor& t : group.params()) tensors.push_back(t);
  }
  std::vector<std::string> names =
      torch_binding::parameter_names(tensors, options.named_parameters);
  // Contiguity is not required: gradients go through the contiguous buffers.
  torch_binding::ParamList mine{
      "op " + std::string(op_name(options.op)) + ", prefix '" + options.prefix + "'", {}};
  for (size_t i = 0; i < tensors.size(); ++i) {
    mine.params.push_back(torch_binding::describe(tensors[i], names[i], /*need_contiguous=*/false));
  }
  if (options.op != ReduceOp::kSum && options.op != ReduceOp::kAverage && !mine.params.empty()) {
    mine.params[0].problem =
        "gradients are reduced with Sum or Average, not " + std::string(op_name(options.op));
  }
  Status s = torch_binding::check_across_ranks(mine, torch_binding::next_tag("check"), what);
  if (!s.is_ok()) throw Error(s);

  state_->op = options.op;
  state_->prefix = options.prefix;
  state_->params.resize(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    State::Param& p = state_->params[i];
    p.tensor = tensors[i];
    p.name = names[i];
    p.tensor_name = options.prefix + "." + std::to_string(i);
    if (!p.tensor.requires_grad()) continue;  // frozen on every rank (checked above)
    // The buffer is set last: a defined buffer means the hook is registered.
    at::Tensor buffer = at::empty(p.tensor.sizes(), p.tensor.options().requires_grad(false));
    p.view = view_of(buffer, what);
    State* state = state_.get();
    p.hook =
        p.tensor.register_hook([state, i](const at::Tensor& grad) { state->on_grad(i, grad); });
    p.buffer = std::move(buffer);
  }
}

DistributedOptimizer::~DistributedOptimizer() {
  for (State::Param& p : state_->params) {
    if (p.buffer.defined()) p.tensor.remove_hook(p.hook);  // hooked
  }
  std::lock_guard lk(state_->mu);
  (void)state_->wait_all();  // the engine may still write the buffers
}

void DistributedOptimizer::synchronize() {
  std::lock_guard lk(state_->mu);
  state_->ensure_begun();
  if (state_->plan.local) return;  // this rank's own gradients are in .grad already
  for (State::Param& p : state_->params) {
    if (!p.buffer.defined() || p.pending) continue;  // not hooked, or done
    p.buffer.zero_();  // no gradient here this step: contribute nothing, but take part
    p.handle = enqueue_allreduce(p.tensor_name, p.view, p.view, state_->op);
    p.pending = true;
  }
  Status s = state_->wait_all();
  if (!s.is_ok()) throw Error(s);
  at::NoGradGuard no_grad;
  for (State::Param& p : state_->params) {
    if (!p.buffer.defined()) continue;  // not hooked
    at::Tensor& grad = p.tensor.mutable_grad();
    if (grad.defined()) {
      grad.copy_(p.buffer);
    } else {
      grad = p.buffer.clone();
    }
  }
}

bool DistributedOptimizer::catch_up() {
  if (rounds_behind() == 0) return false;
  {
    std::lock_guard lk(state_->mu);
    state_->ensure_begun();
    if (state_->plan.local) return false;  // no gradient rounds in this step
    for (State::Param& p : state_->params) {
      if (!p.buffer.defined() || p.pending) continue;
      p.handle = enqueue_catch_up(p.tensor_name, p.view, state_->op);
      p.pending = true;
    }
    for (size_t i = 0; i < state_->params.size(); ++i) {
      State::Param& p = state_->params[i];
      if (!p.pending) continue;
      Status s = wait(p.handle);
      if (s.code() == StatusCode::kFailedPrecondition) {
        p.pending = false;  // nothing missed: step() takes part with zeros
      } else if (!s.is_ok()) {
        p.pending = false;
        throw Error(s.code(), "DistributedOptimizer: catching up " +
                                  torch_binding::subject(p.name, i) + ": " + s.message());
      }
    }
  }
  step();
  return true;
}

at::Tensor DistributedOptimizer::step() {
  synchronize();
  at::Tensor loss = optimizer_->step();
  StepPlan plan;
  {
    std::lock_guard lk(state_->mu);
    plan = state_->plan;
    state_->begun = false;
  }
  if (plan.average) {
    std::vector<NamedTensor> named;
    for (State::Param& p : state_->params) {
      named.push_back({state_->prefix + "." + p.name, view_of(p.tensor, "DistributedOptimizer")});
    }
    Status s = average_parameters(named);
    if (!s.is_ok()) throw Error(s);
  }
  mark_step();
  return loss;
}

}  // namespace quorum::torch
