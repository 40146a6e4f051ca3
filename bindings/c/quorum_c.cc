// The C ABI: thin adapters from C types and function pointers to the public C++ API. Every entry
// point catches everything, because the only thing the C++ API can throw here is bad_alloc (from
// building strings, vectors and std::functions) and an exception must never unwind into C.
#include "bindings/c/quorum_c.h"

#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "quorum/quorum.h"

// A handle either refers to a runtime operation or carries an error this layer found itself
// (the C++ API cannot make a completed Handle from outside the library).
struct quorum_handle {
  quorum::Handle handle;
  quorum::Status early;
};

namespace {

using quorum::Status;
using quorum::StatusCode;

static_assert(static_cast<int>(quorum::DataType::kU8) == QUORUM_U8);
static_assert(static_cast<int>(quorum::ReduceOp::kProduct) == QUORUM_PRODUCT);
static_assert(static_cast<int>(StatusCode::kUnimplemented) == QUORUM_UNIMPLEMENTED);
static_assert(sizeof(quorum_stats) == 13 * 8 + 8 + 3 * 8 + 3 * 8 + 2 * 8 + 3 * 8,
              "quorum_stats only ever grows at the end");

void copy_message(const std::string& msg, char* err, size_t err_len) {
  if (!err || err_len == 0) return;
  size_t n = msg.size() < err_len - 1 ? msg.size() : err_len - 1;
  std::memcpy(err, msg.data(), n);
  err[n] = '\0';
}

int report(const Status& s, char* err, size_t err_len) {
  copy_message(s.message(), err, err_len);
  return static_cast<int>(s.code());
}

int report_exception(char* err, size_t err_len) {
  copy_message("out of memory in the quorum C ABI", err, err_len);
  return QUORUM_INTERNAL;
}

// The status code of `call()` (a Status), its message copied to `err`; out of memory is reported
// as such instead of unwinding into C.
template <typename Call>
int guarded(char* err, size_t err_len, Call&& call) {
  try {
    return report(call(), err, err_len);
  } catch (...) {
    return report_exception(err, err_len);
  }
}

Status invalid(const char* name, const std::string& what) {
  return Status(StatusCode::kInvalidArgument, "tensor '" + std::string(name) + "': " + what);
}

// Checks what only this layer can see (C enums are ints; a NULL shape) and builds the view. The
// runtime validates the rest (null data, negative dimensions, ...) with the same message style.
Status host_tensor(const char* name, const void* data, int dtype, const int64_t* shape, int ndim,
                   quorum::Tensor* out) {
  if (!name) return invalid("(null)", "the name is NULL");
  if (dtype < 0 || dtype >= quorum::kNumDataTypes) {
    return invalid(name, "unsupported dtype value " + std::to_string(dtype));
  }
  if (ndim < 0) return invalid(name, "ndim is negative (" + std::to_string(ndim) + ")");
  if (ndim > 0 && shape == nullptr) {
    return invalid(name, "shape is NULL but ndim is " + std::to_string(ndim));
  }
  out->data = const_cast<void*>(data);
  out->dtype = static_cast<quorum::DataType>(dtype);
  out->shape.assign(shape, shape + ndim);
  out->device = quorum::Device::host();
  return Status::ok();
}

quorum::DoneCallback done_adapter(quorum_done_fn done, void* user_data) {
  if (!done) return {};
  return [done, user_data](const Status& s) {
    done(static_cast<int>(s.code()), s.message().c_str(), user_data);
  };
}

// A handle that is already complete with `s`; `done` runs now, on the caller's thread, as the
// C++ API does for requests it rejects at once.
quorum_handle* rejected(Status s, quorum_done_fn done, void* user_data) {
  auto* h = new (std::nothrow) quorum_handle;
  if (done) done(static_cast<int>(s.code()), s.message().c_str(), user_data);
  if (h) h->early = std::move(s);
  return h;
}

quorum_handle* wrap(quorum::Handle h) { return new (std::nothrow) quorum_handle{std::move(h), {}}; }

// Whether `h` refers to a runtime operation: not NULL and not one of rejected()'s handles, which
// are complete from the start.
bool in_runtime(const quorum_handle* h) { return h && h->handle.valid(); }

// The handle of a request: when `check()` (what only this layer can see) fails, one already
// complete with that error (rejected()); else wrap(enqueue(the done adapter)). NULL when out of
// memory.
template <typename Check, typename Enqueue>
quorum_handle* submit(quorum_done_fn done, void* user_data, Check&& check, Enqueue&& enqueue) {
  try {
    Status s = check();
    if (!s.is_ok()) return rejected(std::move(s), done, user_data);
    return wrap(enqueue(done_adapter(done, user_data)));
  } catch (...) {
    return nullptr;
  }
}

}  // namespace

extern "C" {

int quorum_abi_version(void) { return QUORUM_C_ABI_VERSION; }

const char* quorum_status_name(int code) {
  switch (code) {
    case QUORUM_OK:
      return "OK";
    case QUORUM_INVALID_ARGUMENT:
      return "invalid argument";
    case QUORUM_MISMATCH:
      return "mismatch";
    case QUORUM_FAILED_PRECONDITION:
      return "failed precondition";
    case QUORUM_ABORTED:
      return "aborted";
    case QUORUM_INTERNAL:
      return "internal";
    case QUORUM_UNIMPLEMENTED:
      return "unimplemented";
    default:
      return "unknown status code";
  }
}

int quorum_init(char* err, size_t err_len) {
  return guarded(err, err_len, [] { return quorum::init(); });
}

int quorum_shutdown(char* err, size_t err_len) {
  return guarded(err, err_len, [] { return quorum::shutdown(); });
}

int quorum_is_initialized(void) { return quorum::is_initialized() ? 1 : 0; }
int quorum_rank(void) { return quorum::rank(); }
int quorum_size(void) { return quorum::size(); }
int quorum_local_rank(void) { return quorum::local_rank(); }
int quorum_local_size(void) { return quorum::local_size(); }
int quorum_host_count(void) { return quorum::host_count(); }
int quorum_host_index(void) { return quorum::host_index(); }

static Status check_op(const char* name, quorum_op op) {
  if (op >= 0 && op < quorum::kNumReduceOps) return Status::ok();
  return invalid(name, "unsupported reduce op value " + std::to_string(op));
}

quorum_handle* quorum_allreduce(const char* name, const void* input, void* output,
                                quorum_dtype dtype, const int64_t* shape, int ndim, quorum_op op,
                                quorum_done_fn done, void* user_data) {
  quorum::Tensor in, out;
  return submit(
      done, user_data,
      [&] {
        Status s = host_tensor(name, input, dtype, shape, ndim, &in);
        if (s.is_ok()) s = host_tensor(name, output, dtype, shape, ndim, &out);
        return s.is_ok() ? check_op(name, op) : s;
      },
      [&](quorum::DoneCallback cb) {
        return quorum::enqueue_allreduce(name, in, out, static_cast<quorum::ReduceOp>(op),
                                         std::move(cb));
      });
}

quorum_handle* quorum_catch_up(const char* name, void* output, quorum_dtype dtype,
                               const int64_t* shape, int ndim, quorum_op op, quorum_done_fn done,
                               void* user_data) {
  quorum::Tensor out;
  return submit(
      done, user_data,
      [&] {
        Status s = host_tensor(name, output, dtype, shape, ndim, &out);
        return s.is_ok() ? check_op(name, op) : s;
      },
      [&](quorum::DoneCallback cb) {
        return quorum::enqueue_catch_up(name, out, static_cast<quorum::ReduceOp>(op),
                                        std::move(cb));
      });
}

uint64_t quorum_rounds_behind(void) { return quorum::rounds_behind(); }

quorum_handle* quorum_broadcast(const char* name, void* data, quorum_dtype dtype,
                                const int64_t* shape, int ndim, int root, quorum_done_fn done,
                                void* user_data) {
  quorum::Tensor t;
  return submit(
      done, user_data, [&] { return host_tensor(name, data, dtype, shape, ndim, &t); },
      [&](quorum::DoneCallback cb) {
        return quorum::enqueue_broadcast(name, t, root, std::move(cb));
      });
}

quorum_handle* quorum_allgather(const char* name, const void* input, quorum_dtype dtype,
                                const int64_t* shape, int ndim, quorum_alloc_fn allocate,
                                void* alloc_data, quorum_done_fn done, void* user_data) {
  quorum::Tensor t;
  return submit(
      done, user_data,
      [&] {
        Status s = host_tensor(name, input, dtype, shape, ndim, &t);
        if (s.is_ok() && !allocate) s = invalid(name, "allgather needs an output allocator");
        return s;
      },
      [&](quorum::DoneCallback cb) {
        quorum::OutputAllocator alloc = [allocate,
                                         alloc_data](const std::vector<int64_t>& out_shape) {
          return allocate(out_shape.data(), static_cast<int>(out_shape.size()), alloc_data);
        };
        return quorum::enqueue_allgather(name, t, std::move(alloc), std::move(cb));
      });
}

int quorum_wait(quorum_handle* handle, char* err, size_t err_len) {
  return guarded(err, err_len, [handle] {
    if (!handle) return Status(StatusCode::kInvalidArgument, "quorum_wait on a NULL handle");
    if (!in_runtime(handle)) return handle->early;
    return quorum::wait(handle->handle);
  });
}

int quorum_poll(quorum_handle* handle) {
  if (!in_runtime(handle)) return 1;
  return quorum::poll(handle->handle) ? 1 : 0;
}

int64_t quorum_result_count(quorum_handle* handle) {
  if (!in_runtime(handle)) return 0;
  return quorum::result_count(handle->handle);
}

void quorum_handle_free(quorum_handle* handle) { delete handle; }

void quorum_mark_step(void) { quorum::mark_step(); }

uint64_t quorum_begin_step(int* local, int* average) {
  quorum::StepPlan plan;
  try {
    plan = quorum::begin_step();
  } catch (...) {
    plan = quorum::StepPlan{};  // out of memory: a gradient step
  }
  if (local) *local = plan.local ? 1 : 0;
  if (average) *average = plan.average ? 1 : 0;
  return plan.step;
}

int quorum_average_parameters(const quorum_named_tensor* params, size_t count, char* err,
                              size_t err_len) {
  return guarded(err, err_len, [&] {
    if (!params && count > 0) {
      return Status(StatusCode::kInvalidArgument, "average_parameters: params is NULL");
    }
    std::vector<quorum::NamedTensor> named(count);
    for (size_t i = 0; i < count; ++i) {
      const quorum_named_tensor& p = params[i];
      if (!p.name) {
        return Status(StatusCode::kInvalidArgument,
                      "average_parameters: parameter #" + std::to_string(i) + " has a NULL name");
      }
      named[i].name = p.name;
      QUORUM_RETURN_IF_ERROR(host_tensor(p.name, p.data, p.dtype, p.shape, p.ndim, &named[i].tensor));
    }
    return quorum::average_parameters(named);
  });
}

int quorum_start_timeline(const char* path, char* err, size_t err_len) {
  return guarded(err, err_len, [path] {
    if (!path) return Status(StatusCode::kInvalidArgument, "start_timeline: the path is NULL");
    return quorum::start_timeline(path);
  });
}

void quorum_stop_timeline(void) {
  try {
    quorum::stop_timeline();
  } catch (...) {
    // Nothing to report through a void C function; the timeline writer logs its own failures.
  }
}

int quorum_flush(quorum_fold_fn on_folded, void* user_data, char* err, size_t err_len) {
  return guarded(err, err_len, [on_folded, user_data] {
    quorum::FoldCallback fold;
    if (on_folded) {
      fold = [on_folded, user_data](const std::string& name, const quorum::Tensor& t,
                                    int64_t gradients) {
        on_folded(name.c_str(), t.data, static_cast<quorum_dtype>(t.dtype), t.shape.data(),
                  static_cast<int>(t.shape.size()), gradients, user_data);
      };
    }
    return quorum::flush(std::move(fold));
  });
}

int quorum_get_stats(quorum_stats* out, size_t size) {
  if (!out) return QUORUM_INVALID_ARGUMENT;
  quorum::Stats s = quorum::stats();
  quorum_stats c{};
  c.steps = s.steps;
  c.plans = s.plans;
  c.tensors = s.tensors;
  c.fused_tensors = s.fused_tensors;
  c.errors = s.errors;
  c.bytes = s.bytes;
  c.collective_seconds = s.collective_seconds;
  c.negotiation_seconds = s.negotiation_seconds;
  c.control_bytes_sent = s.control_bytes_sent;
  c.bounded_plans = s.bounded_plans;
  c.late_answered = s.late_answered;
  c.folded = s.folded;
  c.bounded_peak_bytes = s.bounded_peak_bytes;
  c.bounded_mode = s.bounded_mode ? 1 : 0;
  c.allreduce_native = s.allreduce_native;
  c.allreduce_ring = s.allreduce_ring;
  c.allreduce_tree = s.allreduce_tree;
  c.allreduce_hierarchical = s.allreduce_hierarchical;
  c.hierarchical_intra_seconds = s.hierarchical_intra_seconds;
  c.hierarchical_inter_seconds = s.hierarchical_inter_seconds;
  c.fast_plans = s.fast_plans;
  c.schedules = s.schedules;
  c.fast_fallbacks = s.fast_fallbacks;
  c.local_steps = s.local_steps;
  c.averagings = s.averagings;
  std::memcpy(out, &c, size < sizeof c ? size : sizeof c);
  return QUORUM_OK;
}

}  // extern "C"
