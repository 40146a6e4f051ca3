/* quorum_c.h — the stable C ABI over quorum's C++ API (quorum/quorum.h). Plain C99.
 *
 * Build against the installed library with `pkg-config --cflags --libs quorum_c` and include
 * <quorum/quorum_c.h>. Typical use, on every rank, under mpiexec:
 *
 *   char err[256];
 *   if (quorum_init(err, sizeof err) != QUORUM_OK) { fprintf(stderr, "%s\n", err); exit(1); }
 *   int64_t shape[1] = {n};
 *   quorum_handle* h = quorum_allreduce("fc.weight.grad", grad, grad, QUORUM_F32, shape, 1,
 *                                       QUORUM_AVERAGE, NULL, NULL);
 *   if (quorum_wait(h, err, sizeof err) != QUORUM_OK) fprintf(stderr, "%s\n", err);
 *   quorum_handle_free(h);
 *   quorum_shutdown(err, sizeof err);
 *
 * Errors. Every failure is a status code (quorum_status, the values of quorum::StatusCode)
 * plus a message; no C++ exception ever crosses this interface. Functions taking `err` and
 * `err_len` copy the message there (NUL-terminated, truncated to err_len - 1 characters) when
 * `err` is not NULL and err_len > 0; on success they store the empty string. Messages about a
 * tensor name it, e.g. "tensor 'fc.weight': shape [10,5] on ranks 0,2 but [10,6] on rank 1".
 *
 * Threads. Every function may be called from any thread. Completion, allocator and fold
 * callbacks run on quorum's engine thread (or, for a request rejected at once, on the calling
 * thread before the enqueue returns); they must be short and must not wait on their own handle.
 * Other quorum calls, enqueues included, are allowed inside them.
 *
 * Memory. Tensors are host memory, dense and row-major, owned by the caller, who keeps them
 * valid (inputs unmodified, outputs unread) until the operation completes. Strings passed in
 * are copied before the call returns. Strings and tensors passed to callbacks are valid only
 * during the callback. */
#ifndef QUORUM_C_H_
#define QUORUM_C_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QUORUM_C_EXPORT __attribute__((visibility("default")))

/* Bumped when a declaration here changes incompatibly; additions keep it. */
#define QUORUM_C_ABI_VERSION 1

typedef enum {
  QUORUM_F16 = 0,
  QUORUM_BF16 = 1,
  QUORUM_F32 = 2,
  QUORUM_F64 = 3,
  QUORUM_I32 = 4,
  QUORUM_I64 = 5,
  QUORUM_U8 = 6
} quorum_dtype;

typedef enum {
  QUORUM_SUM = 0,
  QUORUM_AVERAGE = 1, /* sum / number of ranks; integers truncate toward zero */
  QUORUM_MIN = 2,
  QUORUM_MAX = 3,
  QUORUM_PRODUCT = 4
} quorum_op;

typedef enum {
  QUORUM_OK = 0,
  QUORUM_INVALID_ARGUMENT = 1,    /* bad input from this caller: null pointer, bad shape/dtype */
  QUORUM_MISMATCH = 2,            /* ranks disagree about a tensor (shape, dtype, op, root) */
  QUORUM_FAILED_PRECONDITION = 3, /* not initialised, shut down, name already in flight */
  QUORUM_ABORTED = 4,             /* a peer went away, or shutdown with pending work */
  QUORUM_INTERNAL = 5,            /* broken invariant, MPI or network failure */
  QUORUM_UNIMPLEMENTED = 6        /* valid but not served by this build */
} quorum_status;

/* The value of QUORUM_C_ABI_VERSION the library was built with. */
QUORUM_C_EXPORT int quorum_abi_version(void);
/* A short constant name for a status code ("OK", "invalid argument", ...); never NULL. */
QUORUM_C_EXPORT const char* quorum_status_name(int code);

/* ---- lifecycle (collective: every rank calls them; both idempotent) ---- */

/* Reads QUORUM_* settings, initialises MPI if the application has not (it must have asked for
 * MPI_THREAD_MULTIPLE if it did), connects to the coordinator, starts the engine. */
QUORUM_C_EXPORT int quorum_init(char* err, size_t err_len);
/* Fails pending operations with "shut down", joins quorum's threads, finalises MPI if
 * quorum_init initialised it. */
QUORUM_C_EXPORT int quorum_shutdown(char* err, size_t err_len);
/* 1 between quorum_init and quorum_shutdown, else 0. */
QUORUM_C_EXPORT int quorum_is_initialized(void);
/* This process's place in the job; -1 when not initialised. */
QUORUM_C_EXPORT int quorum_rank(void);
QUORUM_C_EXPORT int quorum_size(void);
QUORUM_C_EXPORT int quorum_local_rank(void);
QUORUM_C_EXPORT int quorum_local_size(void);
/* The hosts the job spans, and this process's host (0 .. count - 1); -1 when not initialised. */
QUORUM_C_EXPORT int quorum_host_count(void);
QUORUM_C_EXPORT int quorum_host_index(void);

/* ---- collectives ---- */

/* An enqueued operation. Owned by the caller, who releases it with quorum_handle_free, before
 * or after completion (freeing early does not cancel: the operation and its callback still
 * run, and the tensors must stay valid until then). */
typedef struct quorum_handle quorum_handle;

/* Called exactly once when an operation completes: `code` is its status, `message` the error
 * message ("" for QUORUM_OK), `user_data` the pointer given to the enqueue. */
typedef void (*quorum_done_fn)(int code, const char* message, void* user_data);

/* Called once by an allgather when the output shape is known (first dimension = sum over
 * ranks; `ndim` entries). Returns memory for product(shape) elements of the input's dtype,
 * valid until completion, or NULL to fail the operation. */
typedef void* (*quorum_alloc_fn)(const int64_t* shape, int ndim, void* user_data);

/* The enqueues. `name` identifies the tensor across ranks (every rank uses the same name for
 * the same tensor) and must not already be in flight on this rank. `shape` has `ndim` entries
 * (ndim 0 = a scalar; shape may be NULL then). `done` may be NULL. They never return NULL
 * except when out of memory: a request wrong on its face (NULL name or data, unknown dtype or
 * op, negative dimension, not initialised) returns a handle already complete with the error,
 * after calling `done`. */

/* Reduces `input` across ranks into `output` (same dtype and shape; may be the same memory). */
QUORUM_C_EXPORT quorum_handle* quorum_allreduce(const char* name, const void* input, void* output,
                                                quorum_dtype dtype, const int64_t* shape, int ndim,
                                                quorum_op op, quorum_done_fn done, void* user_data);
/* Catching up in bounded rounds (quorum::enqueue_catch_up): writes the result of the oldest
 * round of `name` that ran without this rank into `output`, adding no gradient; fails at once
 * with QUORUM_FAILED_PRECONDITION when there is none. quorum_rounds_behind() says how many
 * rounds this rank may take so (quorum::rounds_behind). */
QUORUM_C_EXPORT quorum_handle* quorum_catch_up(const char* name, void* output, quorum_dtype dtype,
                                               const int64_t* shape, int ndim, quorum_op op,
                                               quorum_done_fn done, void* user_data);
QUORUM_C_EXPORT uint64_t quorum_rounds_behind(void);
/* Replaces `data` on every rank with rank `root`'s `data`. */
QUORUM_C_EXPORT quorum_handle* quorum_broadcast(const char* name, void* data, quorum_dtype dtype,
                                                const int64_t* shape, int ndim, int root,
                                                quorum_done_fn done, void* user_data);
/* Concatenates every rank's `input` along the first dimension, in rank order. The first
 * dimension may differ per rank; the rest of the shape and the dtype must agree (ndim >= 1).
 * `allocate` (required) receives `alloc_data`, then `done` receives `user_data`. */
QUORUM_C_EXPORT quorum_handle* quorum_allgather(const char* name, const void* input,
                                                quorum_dtype dtype, const int64_t* shape, int ndim,
                                                quorum_alloc_fn allocate, void* alloc_data,
                                                quorum_done_fn done, void* user_data);

/* Blocks until the operation completes; returns its status (the same on every later call)
 * and copies its message to `err`. A NULL handle is QUORUM_INVALID_ARGUMENT. */
QUORUM_C_EXPORT int quorum_wait(quorum_handle* handle, char* err, size_t err_len);
/* 1 once the operation has completed (or for a NULL handle), 0 otherwise. Never blocks. */
QUORUM_C_EXPORT int quorum_poll(quorum_handle* handle);
/* How many gradients an allreduce result sums (the rank count in sync rounds; see
 * quorum::result_count). 0 before completion, for other operations, or for NULL. */
QUORUM_C_EXPORT int64_t quorum_result_count(quorum_handle* handle);
/* Releases the caller's reference; NULL is a no-op. */
QUORUM_C_EXPORT void quorum_handle_free(quorum_handle* handle);

/* ---- steps, timeline, bounded-mode flush, counters ---- */

/* Marks the end of a training step (statistics, timeline, sync policy). */
QUORUM_C_EXPORT void quorum_mark_step(void);

/* Periodic model averaging (see quorum::begin_step): call once per step before enqueuing its
 * gradients. Sets *local to 1 when this step applies the rank's own gradients (no gradient
 * allreduce) and *average to 1 when quorum_average_parameters() follows its update; either
 * pointer may be NULL. Returns the step's index. Collective at the first step of a segment in
 * auto mode. */
QUORUM_C_EXPORT uint64_t quorum_begin_step(int* local, int* average);

/* One tensor of a parameter set, host memory. */
typedef struct {
  const char* name;
  void* data;
  quorum_dtype dtype;
  const int64_t* shape;
  int ndim;
} quorum_named_tensor;
/* Replaces each of the `count` tensors with its average over all ranks, in place; blocks.
 * Collective; bitwise identical on every rank afterwards; never compressed. Returns a
 * quorum_status code and copies the message (naming the tensor) to `err`. */
QUORUM_C_EXPORT int quorum_average_parameters(const quorum_named_tensor* params, size_t count,
                                              char* err, size_t err_len);

/* Starts this rank's Chrome-trace timeline; rank R writes `path` with ".rankR" before the
 * extension. Replaces a running one. Not collective. */
QUORUM_C_EXPORT int quorum_start_timeline(const char* path, char* err, size_t err_len);
/* Flushes and closes the running timeline, if any. */
QUORUM_C_EXPORT void quorum_stop_timeline(void);

/* Called by quorum_flush once per tensor with folded late gradients: `result` holds
 * product(shape) elements of `dtype` (the Sum, or the Average over `gradients`). The runtime
 * currently describes the result as one flat dimension of the tensor's element count. */
typedef void (*quorum_fold_fn)(const char* name, const void* result, quorum_dtype dtype,
                               const int64_t* shape, int ndim, int64_t gradients, void* user_data);
/* Bounded mode: folds every rank's carry of late gradients into one more reduction per tensor
 * and calls `on_folded` (may be NULL) for each. Collective; call it after waiting on every
 * outstanding handle. Blocks until done. A no-op returning QUORUM_OK in sync mode. */
QUORUM_C_EXPORT int quorum_flush(quorum_fold_fn on_folded, void* user_data, char* err,
                                 size_t err_len);

/* Counters of this rank's runtime since init (see quorum::Stats). New fields are only ever
 * appended: pass sizeof(quorum_stats) so an older caller gets the prefix it knows. */
typedef struct {
  uint64_t steps;
  uint64_t plans;
  uint64_t tensors;
  uint64_t fused_tensors;
  uint64_t errors;
  uint64_t bytes;
  double collective_seconds;
  double negotiation_seconds;
  uint64_t control_bytes_sent;
  uint64_t bounded_plans;
  uint64_t late_answered;
  uint64_t folded;
  uint64_t bounded_peak_bytes;
  int32_t bounded_mode;
  /* host allreduce plans run by each algorithm (what QUORUM_ALGO=auto chose) */
  uint64_t allreduce_native;
  uint64_t allreduce_ring;
  uint64_t allreduce_tree;
  /* steady-state fast path: plans run from a schedule, schedules taken, fallbacks */
  uint64_t fast_plans;
  uint64_t schedules;
  uint64_t fast_fallbacks;
  /* periodic model averaging: local steps planned, averagings completed */
  uint64_t local_steps;
  uint64_t averagings;
  /* host allreduce plans run hierarchically (inside hosts, then across them) */
  uint64_t allreduce_hierarchical;
  /* seconds in each level of the hierarchical allreduces: inside hosts, across hosts */
  double hierarchical_intra_seconds;
  double hierarchical_inter_seconds;
} quorum_stats;
/* Fills the first `size` bytes of `*out` (all zero when not initialised). Returns
 * QUORUM_INVALID_ARGUMENT for a NULL `out`. */
QUORUM_C_EXPORT int quorum_get_stats(quorum_stats* out, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* QUORUM_C_H_ */
