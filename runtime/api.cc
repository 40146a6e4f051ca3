// The public API: a process-wide runtime pointer behind a mutex. Enqueues copy the pointer
// under the lock and then work without it, so a callback on the engine thread that enqueues
// cannot deadlock against shutdown().
#include <mutex>

#include "quorum/quorum.h"
#include "coordinator/reserved_names.h"
#include "runtime/runtime.h"

namespace quorum {
namespace {

std::mutex g_lifecycle;  // serialises init() and shutdown()
std::mutex g_mu;         // guards g_runtime and g_was_shut_down
std::shared_ptr<Runtime> g_runtime;
bool g_was_shut_down = false;
int g_failed_init_rank = -1;  // the MPI rank of the last init() that failed, if it got that far

std::shared_ptr<Runtime> current() {
  std::lock_guard lk(g_mu);
  return g_runtime;
}

Handle finished(const std::string& name, Status s, DoneCallback done) {
  auto state = std::make_shared<detail::HandleState>(name, std::move(done));
  state->complete(std::move(s));
  return detail::HandleAccess::make(std::move(state));
}

// `wake` false: the caller helps the engine at once (allreduce()).
Handle submit(PendingRequest r, DoneCallback done, bool wake = true) {
  auto rt = current();
  if (!rt) {
    std::lock_guard lk(g_mu);
    return finished(r.desc.name, Status(StatusCode::kFailedPrecondition,
                           "tensor '" + r.desc.name + "': quorum is " +
                               (g_was_shut_down ? "shut down" : "not initialised (call quorum::init())")),
                    std::move(done));
  }
  auto state = std::make_shared<detail::HandleState>(r.desc.name, std::move(done));
  r.handle = state;
  r.enqueued = std::chrono::steady_clock::now();
  Status s = rt->enqueue(std::move(r), wake);
  if (!s.is_ok()) state->complete(std::move(s));
  return detail::HandleAccess::make(std::move(state));
}

PendingRequest describe(const std::string& name, coord::CollectiveKind kind, const Tensor& input) {
  PendingRequest r;
  r.desc.name = name;
  r.desc.kind = kind;
  r.desc.dtype = input.dtype;
  r.desc.device = input.device.kind;
  r.desc.shape = input.shape;
  r.input = input;
  return r;
}

}  // namespace

Status init() {
  std::lock_guard life(g_lifecycle);
  if (current()) return Status::ok();
  std::unique_ptr<Runtime> rt;
  int mpi_rank = -1;
  Status s = Runtime::create(&rt, &mpi_rank);
  std::lock_guard lk(g_mu);
  g_failed_init_rank = s.is_ok() ? -1 : mpi_rank;
  if (!s.is_ok()) return s;
  g_runtime = std::move(rt);
  g_was_shut_down = false;
  return Status::ok();
}

Status shutdown() {
  std::lock_guard life(g_lifecycle);
  auto rt = current();
  if (!rt) return Status::ok();
  Status s = rt->shutdown();
  std::lock_guard lk(g_mu);
  g_runtime.reset();
  g_was_shut_down = true;
  return s;
}

bool is_initialized() { return current() != nullptr; }
int rank() {
  auto rt = current();
  if (rt) return rt->rank();
  std::lock_guard lk(g_mu);
  return g_failed_init_rank;
}
int size() {
  auto rt = current();
  return rt ? rt->size() : -1;
}
int local_rank() {
  auto rt = current();
  return rt ? rt->local_rank() : -1;
}
int local_size() {
  auto rt = current();
  return rt ? rt->local_size() : -1;
}
int host_count() {
  auto rt = current();
  return rt ? rt->host_count() : -1;
}
int host_index() {
  auto rt = current();
  return rt ? rt->host_index() : -1;
}

Handle enqueue_allreduce(const std::string& name, const Tensor& input, const Tensor& output,
                         ReduceOp op, DoneCallback done) {
  PendingRequest r = describe(name, coord::CollectiveKind::kAllreduce, input);
  r.desc.op = op;
  r.output = output;
  return submit(std::move(r), std::move(done));
}

Handle enqueue_catch_up(const std::string& name, const Tensor& output, ReduceOp op,
                        DoneCallback done) {
  PendingRequest r = describe(name, coord::CollectiveKind::kAllreduce, output);
  r.desc.op = op;
  r.output = output;
  r.catch_up = true;
  return submit(std::move(r), std::move(done));
}

uint64_t rounds_behind() {
  auto rt = current();
  return rt ? rt->engine().rounds_behind() : 0;
}

Handle enqueue_broadcast(const std::string& name, const Tensor& tensor, int root,
                         DoneCallback done) {
  PendingRequest r = describe(name, coord::CollectiveKind::kBroadcast, tensor);
  r.desc.root = root;
  return submit(std::move(r), std::move(done));
}

Handle enqueue_allgather(const std::string& name, const Tensor& input,
                         OutputAllocator allocate_output, DoneCallback done) {
  PendingRequest r = describe(name, coord::CollectiveKind::kAllgather, input);
  r.allocate = std::move(allocate_output);
  return submit(std::move(r), std::move(done));
}

// wait(); `owe_wake`: the request went in without waking the engine thread (allreduce()).
static Status wait_helping(const Handle& handle, bool owe_wake) {
  auto* state = detail::HandleAccess::state(handle);
  if (!state) return Status(StatusCode::kInvalidArgument, "wait() on an empty handle");
  if (state->poll()) return state->wait();  // done (or refused): nothing was left to wake for
  auto rt = current();
  std::shared_ptr<Timeline> tl = rt ? rt->timeline() : nullptr;
  // The time a framework thread is blocked here is the communication it did not hide.
  int64_t t0 = tl ? Timeline::now_ns() : 0;
  state->waited.store(true, std::memory_order_release);
  if (rt) rt->engine().help(*state, owe_wake);
  if (!tl) return state->wait();
  Status s = state->wait();
  tl->record({'X', 'p', Lane::kWait, "wait", state->name, t0, Timeline::now_ns() - t0,
              {{"tensor", state->name}}});
  return s;
}

Status wait(const Handle& handle) { return wait_helping(handle, false); }

Status allreduce(const std::string& name, const Tensor& input, const Tensor& output,
                 ReduceOp op) {
  if (Engine::working_here()) {
    return Status(StatusCode::kFailedPrecondition,
                  "tensor '" + name + "': allreduce() blocks, and a completion callback runs "
                  "where quorum's work is done: enqueue it instead");
  }
  PendingRequest r = describe(name, coord::CollectiveKind::kAllreduce, input);
  r.desc.op = op;
  r.output = output;
  return wait_helping(submit(std::move(r), {}, /*wake=*/false), true);
}

bool poll(const Handle& handle) {
  auto* state = detail::HandleAccess::state(handle);
  return state == nullptr || state->poll();
}

void mark_step() {
  auto rt = current();
  if (!rt) return;
  uint64_t step = rt->engine().count_step();
  if (auto tl = rt->timeline()) {
    tl->record({'i', 'p', Lane::kSteps, "step", "step", Timeline::now_ns(), 0,
                {{"step", static_cast<int64_t>(step)}}});
  }
}

Status start_timeline(const std::string& path) {
  auto rt = current();
  if (!rt) return Status(StatusCode::kFailedPrecondition, "start_timeline: quorum is not initialised");
  return rt->start_timeline(path);
}

void stop_timeline() {
  if (auto rt = current()) rt->stop_timeline();
}

int64_t result_count(const Handle& handle) {
  auto* state = detail::HandleAccess::state(handle);
  return state && state->poll() ? state->count.load() : 0;
}

Status flush(FoldCallback on_folded) {
  auto rt = current();
  if (!rt) return Status(StatusCode::kFailedPrecondition, "flush: quorum is not initialised");
  return rt->engine().request_flush(std::move(on_folded))->wait();
}

Stats stats() {
  auto rt = current();
  return rt ? rt->stats() : Stats{};
}

StepPlan begin_step() {
  auto rt = current();
  return rt ? rt->step_control().begin() : StepPlan{};
}

Status average_parameters(const std::vector<NamedTensor>& parameters) {
  auto rt = current();
  if (!rt) {
    return Status(StatusCode::kFailedPrecondition, "average_parameters: quorum is not initialised");
  }
  std::vector<Handle> handles;
  handles.reserve(parameters.size());
  for (const NamedTensor& p : parameters) {
    handles.push_back(enqueue_allreduce(std::string(kParameterPrefix) + p.name, p.tensor,
                                        p.tensor, ReduceOp::kAverage));
  }
  Status first;
  for (Handle& h : handles) {
    Status s = wait(h);
    if (!s.is_ok() && first.is_ok()) first = Status(s.code(), "average_parameters: " + s.message());
  }
  if (first.is_ok()) rt->step_control().averaged();
  return first;
}

}  // namespace quorum
