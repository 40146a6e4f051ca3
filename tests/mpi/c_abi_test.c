/* The C ABI from a C program: init, an allreduce and a broadcast with exact checks, an
 * invalid request that fails with a message, and shutdown. */
#include <stdio.h>
#include <string.h>

#include "quorum_c.h"

static int failures = 0;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      fprintf(stderr, "[rank %d] FAILED: ", quorum_rank()); \
      fprintf(stderr, __VA_ARGS__);                        \
      fputc('\n', stderr);                                 \
      failures++;                                          \
    }                                                      \
  } while (0)

int main(void) {
  char err[256];
  int rc = quorum_init(err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "quorum_init: %s\n", err);
    return 1;
  }
  int rank = quorum_rank(), size = quorum_size();
  double v[3] = {rank, 2.0 * rank, 1.0};
  int64_t shape[1] = {3};
  quorum_handle* h = quorum_allreduce("c.sum", v, v, QUORUM_F64, shape, 1, QUORUM_SUM);
  rc = quorum_wait(h, err, sizeof err);
  CHECK(rc == 0, "allreduce: %s", err);
  double tri = size * (size - 1) / 2.0;
  CHECK(v[0] == tri && v[1] == 2 * tri && v[2] == size, "allreduce values %g %g %g", v[0], v[1], v[2]);
  CHECK(quorum_poll(h) == 1, "poll after wait");
  quorum_handle_free(h);

  int32_t b[2] = {rank == 0 ? 7 : -1, rank == 0 ? 9 : -1};
  int64_t bshape[1] = {2};
  h = quorum_broadcast("c.bcast", b, QUORUM_I32, bshape, 1, 0);
  CHECK(quorum_wait(h, err, sizeof err) == 0 && b[0] == 7 && b[1] == 9, "broadcast: %s", err);
  quorum_handle_free(h);

  h = quorum_allreduce("c.null", NULL, NULL, QUORUM_F32, shape, 1, QUORUM_SUM);
  rc = quorum_wait(h, err, sizeof err);
  CHECK(rc != 0 && strstr(err, "tensor 'c.null': input data pointer is null"), "null pointer: %d %s", rc, err);
  quorum_handle_free(h);

  rc = quorum_shutdown(err, sizeof err);
  CHECK(rc == 0, "shutdown: %s", err);
  if (rank == 0) printf("c_abi: %s\n", failures ? "FAILED" : "passed");
  return failures ? 1 : 0;
}
