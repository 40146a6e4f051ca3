// quorum — collective communication for data-parallel training.
//
// The one header applications include. Typical use, on every rank:
//
//   quorum::init();                                   // under mpiexec
//   auto h = quorum::enqueue_allreduce("fc.weight.grad", grad, grad);  // any thread
//   ... more tensors as backward produces them ...
//   quorum::wait(h);                                  // or a callback
//   quorum::shutdown();
//
// Threading: every function may be called from any thread. Completion callbacks run on quorum's
// engine thread, or on a thread blocked in wait() or allreduce() that does the engine's work
// while the fast path runs; they must be short and must not wait() on their own handle (other
// quorum calls, including enqueues, are fine; allreduce() returns an error there).
//
// Errors are values: nothing here throws. A request that is wrong on its face (null data, bad
// shape, duplicate in-flight name, not initialised) returns a handle that is already complete
// with the error. Ranks that disagree about a tensor all receive an error naming it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "quorum/types.h"

namespace quorum {

// Reads QUORUM_* settings, initialises MPI if the application has not (MPI_THREAD_MULTIPLE;
// an application that initialised MPI itself must have asked for that level), duplicates
// MPI_COMM_WORLD for quorum's own traffic, connects to the coordinator and starts the engine.
// Collective: every rank calls it. Calling it again while initialised returns OK. On error
// (e.g. a QUORUM_* value out of range, named in the message) every rank returns an error and
// nothing is left running; a rank whose own check passed says that another rank failed.
QUORUM_EXPORT Status init();

// Finishes or fails outstanding work (pending handles fail with "shut down"), leaves the job,
// joins quorum's threads and finalises MPI if init() initialised it. Collective; idempotent.
QUORUM_EXPORT Status shutdown();

QUORUM_EXPORT bool is_initialized();
// This process's place in the job; -1 when not initialised. After an init() that failed once
// MPI was up, rank() is this process's MPI rank, so the failure can be labelled with it.
QUORUM_EXPORT int rank();
QUORUM_EXPORT int size();
QUORUM_EXPORT int local_rank();
QUORUM_EXPORT int local_size();
// The hosts the job spans (ranks that share memory are one host) and this process's host,
// numbered 0 .. host_count() - 1 in the order of each host's lowest rank; -1 when not
// initialised.
QUORUM_EXPORT int host_count();
QUORUM_EXPORT int host_index();

namespace detail {
struct HandleState;
struct HandleAccess;
}  // namespace detail

// A ticket for one enqueued operation. Copyable; copies refer to the same operation. The
// result is delivered exactly once: the callback (if any) runs once, then wait()/poll() see it.
class QUORUM_EXPORT Handle {
 public:
  Handle() = default;
  bool valid() const { return state_ != nullptr; }

 private:
  friend struct detail::HandleAccess;
  std::shared_ptr<detail::HandleState> state_;
};

using DoneCallback = std::function<void(const Status&)>;

// Gives memory for an allgather's output once its shape is known (first dimension = sum over
// ranks). Called on the engine thread, with the input's CUDA device current when the input is
// on one (so cudaMalloc there allocates on that device); returns a pointer to at least
// product(shape) elements of the input's dtype, valid until the handle completes, or nullptr to
// fail the operation.
using OutputAllocator = std::function<void*(const std::vector<int64_t>& shape)>;

// Reduces `input` across ranks into `output` (same dtype and element count; may be the same
// memory). Average divides the sum by the number of ranks (integers truncate). f16 and bf16
// are accumulated in float and rounded once. `name` identifies the tensor across ranks and
// must not already be in flight on this rank.
QUORUM_EXPORT Handle enqueue_allreduce(const std::string& name, const Tensor& input,
                                       const Tensor& output, ReduceOp op = ReduceOp::kAverage,
                                       DoneCallback done = {});

// Replaces `tensor` on every rank with root's `tensor`.
QUORUM_EXPORT Handle enqueue_broadcast(const std::string& name, const Tensor& tensor, int root,
                                       DoneCallback done = {});

// Concatenates every rank's `input` along the first dimension, in rank order. The first
// dimension may differ per rank; the rest of the shape and the dtype must agree.
QUORUM_EXPORT Handle enqueue_allgather(const std::string& name, const Tensor& input,
                                       OutputAllocator allocate_output, DoneCallback done = {});

// Blocks until the operation completes and returns its Status (again on every later call).
QUORUM_EXPORT Status wait(const Handle& handle);
// enqueue_allreduce() and wait() in one blocking call (Horovod's synchronous allreduce). Once
// the job runs a learned schedule (the fast path), the calling thread does the work itself, so
// a small allreduce costs no hand-off to quorum's thread and back. Not from a completion
// callback (an error says so).
QUORUM_EXPORT Status allreduce(const std::string& name, const Tensor& input, const Tensor& output,
                               ReduceOp op = ReduceOp::kSum);
// True once the operation has completed.
QUORUM_EXPORT bool poll(const Handle& handle);

// Marks the end of a training step (statistics, timeline step marks, later the sync policy).
QUORUM_EXPORT void mark_step();

// Periodic model averaging (local SGD): QUORUM_SYNC_MODE=periodic, or a mode auto picks. A
// training loop that supports it asks, once per step before enqueuing its gradients:
//
//   quorum::StepPlan plan = quorum::begin_step();
//   backward();
//   if (!plan.local) allreduce the gradients (as in sync or bounded mode);
//   optimizer.step();                                   // local gradients when plan.local
//   if (plan.average) quorum::average_parameters(params);
//
// Steps come in segments of QUORUM_AVERAGE_PERIOD after QUORUM_AVERAGE_WARMUP sync steps; in a
// periodic segment every step is local and the last one averages. Every rank gets the same plan
// for the same step: in auto mode rank 0 decides each segment's mode and begin_step() learns it
// with one small broadcast at the segment's first step (collective there); otherwise it does not
// communicate. In sync and bounded modes every plan is {local = false, average = false}, so a
// loop written this way works in every mode.
struct StepPlan {
  bool local = false;    // apply this rank's own gradients; do not allreduce them this step
  bool average = false;  // after this step's update, call average_parameters()
  uint64_t step = 0;     // this step's index (begin_step() calls before it)
};
QUORUM_EXPORT StepPlan begin_step();

// One tensor of a model's parameter set (or any state to average, e.g. momentum buffers).
struct NamedTensor {
  std::string name;
  Tensor tensor;
};
// Replaces every tensor with the average of it over all ranks, in place, and blocks until done:
// afterwards every rank holds bitwise identical values. Collective: every rank passes the same
// names with the same dtypes and shapes (a difference fails on every rank, naming the tensor).
// Always exact (never compressed) and always a synchronous round, whatever the mode. The
// tensors travel as "quorum.params.<name>". Errors name the tensor.
QUORUM_EXPORT Status average_parameters(const std::vector<NamedTensor>& parameters);

// Starts this rank's Chrome-trace timeline (format: docs/timeline-format.md); rank R writes
// `path` with ".rankR" before the extension. Replaces a running timeline. Any thread; not
// collective (each rank decides for itself). QUORUM_TIMELINE=path starts one at init.
QUORUM_EXPORT Status start_timeline(const std::string& path);
// Flushes and closes the running timeline, if any.
QUORUM_EXPORT void stop_timeline();

// Counters of this rank's runtime since init.
struct Stats {
  uint64_t steps = 0;             // mark_step() calls
  uint64_t plans = 0;             // collective plans executed (errors excluded)
  uint64_t tensors = 0;           // tensors completed successfully
  uint64_t fused_tensors = 0;     // of those, tensors that shared a fusion buffer with others
  uint64_t errors = 0;            // tensors completed with an error
  uint64_t bytes = 0;             // payload bytes moved by collectives (wire dtype)
  double collective_seconds = 0;  // time the engine spent inside collectives
  double negotiation_seconds = 0; // summed over tensors: enqueue until its plan started
  uint64_t control_bytes_sent = 0;  // this rank's control-plane traffic to the coordinator
  uint64_t bounded_plans = 0;     // plans run in bounded mode
  uint64_t late_answered = 0;     // late requests answered from a stored bounded-round result
  uint64_t folded = 0;            // late gradients folded in by flush()
  uint64_t bounded_peak_bytes = 0;  // most memory held at once for stored results and carries
  bool bounded_mode = false;      // the mode of the last plan this rank ran (rank 0 decides)
  // Host allreduce plans run by each algorithm: what QUORUM_ALGO=auto chose, plan by plan.
  uint64_t allreduce_native = 0;
  uint64_t allreduce_ring = 0;
  uint64_t allreduce_tree = 0;
  uint64_t allreduce_hierarchical = 0;
  // Time this rank spent in each level of its hierarchical allreduces: inside the host (before
  // and after the network) and across hosts.
  double hierarchical_intra_seconds = 0;
  double hierarchical_inter_seconds = 0;
  // Steady-state fast path (QUORUM_FAST_PATH): plans run from a schedule without asking rank 0,
  // schedules this rank took, and times it went back to the coordinator path.
  uint64_t fast_plans = 0;
  uint64_t schedules = 0;
  uint64_t fast_fallbacks = 0;
  // Periodic model averaging: steps begin_step() planned as local, and average_parameters()
  // calls that completed.
  uint64_t local_steps = 0;
  uint64_t averagings = 0;
};
QUORUM_EXPORT Stats stats();

// How many gradients the allreduce result behind `handle` sums: the rank count in a sync round;
// in bounded rounds (QUORUM_SYNC_MODE=bounded|auto) the ranks present plus the late gradients
// their carries brought. Average divides by this. 0 before completion or for other operations.
QUORUM_EXPORT int64_t result_count(const Handle& handle);

// Bounded mode only: folds every rank's carry of late gradients into one more reduction per
// tensor and calls `on_folded(name, result, gradients)` on quorum's engine thread for each (the
// result is the Sum, or the Average over `gradients`, in the tensor's dtype; valid during the
// call: for a CUDA tensor, work reading it that the callback queues on a stream of its own must
// have finished, or been synchronised, before it returns). Apply it like any gradient so that
// every gradient counts exactly once; to give each late gradient the weight it has in a full
// round (1 / size()), scale the Average by gradients / size() (applied with the full learning
// rate, an Average of one late gradient would weigh size() times its peers). Collective:
// every rank calls it, after waiting on its outstanding handles. Blocks until done.
using FoldCallback =
    std::function<void(const std::string& name, const Tensor& result, int64_t gradients)>;
QUORUM_EXPORT Status flush(FoldCallback on_folded = {});

// Catching up (bounded rounds). A rank that fell behind, its framework still computing rounds
// the others have already run without it, may skip the compute of a step instead: it takes the
// results of the rounds it missed and adds no gradient of its own for them (eager-SGD's late
// process, "backup workers" in synchronous SGD). Nothing is lost: the skipped gradient was never
// computed; each one that was is applied exactly once, as without catching up.
//
//   if (quorum::rounds_behind() > 0) {                 // before the step's forward pass
//     for each gradient: enqueue_catch_up(name, grad);  // then wait, and apply them as usual
//   } else { forward, backward, enqueue_allreduce ... }
//
// rounds_behind(): the most rounds of any one tensor that ran without this rank and whose results
// its framework has not yet taken (0: not behind). A tensor of the step may have fewer (its
// round still waits for this rank): its catch-up fails, and the step is computed for it.
QUORUM_EXPORT uint64_t rounds_behind();
// Writes the result of the oldest round of `name` that ran without this rank into `output` (the
// tensor's dtype and shape, as enqueue_allreduce's), counting as this rank's request for that
// round but adding nothing to it. A rank with no such round fails it at once with
// kFailedPrecondition, naming the tensor; nothing else changes (compute the step instead). A
// catch-up that succeeded is that tensor's request of this step: enqueuing the tensor again in
// the same step would put this rank a round ahead of the others on it, and the job would hang
// at its end; compute the step for the refused tensors only.
QUORUM_EXPORT Handle enqueue_catch_up(const std::string& name, const Tensor& output,
                                      ReduceOp op = ReduceOp::kAverage, DoneCallback done = {});

}  // namespace quorum
