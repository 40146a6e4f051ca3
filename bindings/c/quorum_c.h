/* quorum_c.h — the stable C ABI over quorum's C++ API. Plain C99; no exception crosses it.
 * Every call may come from any thread. Status codes are the values of quorum::StatusCode
 * (0 = OK). Functions that can fail copy a message into `err` (NUL-terminated, truncated to
 * `err_len`) when `err` is not NULL. */
#ifndef QUORUM_C_H_
#define QUORUM_C_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QUORUM_C_EXPORT __attribute__((visibility("default")))

typedef enum { QUORUM_F16 = 0, QUORUM_BF16, QUORUM_F32, QUORUM_F64, QUORUM_I32, QUORUM_I64, QUORUM_U8 } quorum_dtype;
typedef enum { QUORUM_SUM = 0, QUORUM_AVERAGE, QUORUM_MIN, QUORUM_MAX, QUORUM_PRODUCT } quorum_op;

/* An enqueued operation. Owned by the caller: release it with quorum_handle_free. */
typedef struct quorum_handle quorum_handle;

QUORUM_C_EXPORT int quorum_init(char* err, size_t err_len);
QUORUM_C_EXPORT int quorum_shutdown(char* err, size_t err_len);
QUORUM_C_EXPORT int quorum_rank(void);
QUORUM_C_EXPORT int quorum_size(void);
QUORUM_C_EXPORT int quorum_local_rank(void);
QUORUM_C_EXPORT int quorum_local_size(void);

/* Host tensors. `shape` has `ndim` entries. Never returns NULL (an invalid request returns a
 * handle that is already complete with the error). */
QUORUM_C_EXPORT quorum_handle* quorum_allreduce(const char* name, const void* input, void* output,
                                                quorum_dtype dtype, const int64_t* shape, int ndim,
                                                quorum_op op);
QUORUM_C_EXPORT quorum_handle* quorum_broadcast(const char* name, void* data, quorum_dtype dtype,
                                                const int64_t* shape, int ndim, int root);

/* Blocks until done; returns its status code (the same on every later call). */
QUORUM_C_EXPORT int quorum_wait(quorum_handle* handle, char* err, size_t err_len);
/* 1 when done, 0 otherwise. */
QUORUM_C_EXPORT int quorum_poll(quorum_handle* handle);
QUORUM_C_EXPORT void quorum_handle_free(quorum_handle* handle);

#ifdef __cplusplus
}
#endif

#endif /* QUORUM_C_H_ */
