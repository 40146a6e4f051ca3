/* A C program built against the installed quorum alone (pkg-config quorum_c; see
 * install_consumer.sh): every collective through the C ABI with exact results, under
 * mpiexec -n 2. Prints one line per rank and exits non-zero on any wrong value. */
#include <quorum/quorum_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
#define EXPECT(cond, what)                                            \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "consumer rank %d: %s\n", quorum_rank(), what); \
      failures++;                                                     \
    }                                                                 \
  } while (0)

static void count_done(int code, const char* message, void* user_data) {
  (void)message;
  if (code == QUORUM_OK) ++*(int*)user_data;
}

static void* alloc_output(const int64_t* shape, int ndim, void* user_data) {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  int32_t** out = (int32_t**)user_data;
  *out = (int32_t*)malloc((size_t)n * sizeof(int32_t));
  return *out;
}

int main(void) {
  char err[256];
  if (quorum_init(err, sizeof err) != QUORUM_OK) {
    fprintf(stderr, "quorum_init: %s\n", err);
    return 1;
  }
  const int rank = quorum_rank(), size = quorum_size();
  int completed = 0;

  /* allreduce (Average) of element i = rank * 10 + i over 5 floats */
  float v[5];
  for (int i = 0; i < 5; ++i) v[i] = (float)(rank * 10 + i);
  int64_t shape[1] = {5};
  quorum_handle* h = quorum_allreduce("consumer.grad", v, v, QUORUM_F32, shape, 1, QUORUM_AVERAGE,
                                      count_done, &completed);
  EXPECT(quorum_wait(h, err, sizeof err) == QUORUM_OK, err);
  quorum_handle_free(h);
  for (int i = 0; i < 5; ++i) EXPECT(v[i] == 10.0f * (size - 1) / 2.0f + i, "allreduce value");

  /* broadcast from rank 0 */
  int64_t b[2] = {rank == 0 ? 41 : 0, rank == 0 ? -7 : 0};
  int64_t bshape[1] = {2};
  h = quorum_broadcast("consumer.bcast", b, QUORUM_I64, bshape, 1, 0, count_done, &completed);
  EXPECT(quorum_wait(h, err, sizeof err) == QUORUM_OK, err);
  quorum_handle_free(h);
  EXPECT(b[0] == 41 && b[1] == -7, "broadcast value");

  /* allgather: rank r contributes r+1 values equal to r */
  int32_t in[8];
  for (int i = 0; i <= rank; ++i) in[i] = rank;
  int64_t gshape[1] = {rank + 1};
  int32_t* out = NULL;
  h = quorum_allgather("consumer.gather", in, QUORUM_I32, gshape, 1, alloc_output, &out, count_done,
                       &completed);
  EXPECT(quorum_wait(h, err, sizeof err) == QUORUM_OK, err);
  quorum_handle_free(h);
  int k = 0;
  for (int r = 0; r < size; ++r) {
    for (int i = 0; i <= r; ++i, ++k) EXPECT(out && out[k] == r, "allgather value");
  }
  free(out);

  /* a bad request names its tensor */
  h = quorum_allreduce("consumer.bad", NULL, NULL, QUORUM_F32, shape, 1, QUORUM_SUM, NULL, NULL);
  EXPECT(quorum_wait(h, err, sizeof err) == QUORUM_INVALID_ARGUMENT && strstr(err, "consumer.bad"),
         "bad request");
  quorum_handle_free(h);

  quorum_mark_step();
  quorum_stats st;
  quorum_get_stats(&st, sizeof st);
  EXPECT(completed == 3 && st.steps == 1 && st.tensors == 3, "callbacks and counters");
  EXPECT(quorum_shutdown(err, sizeof err) == QUORUM_OK, err);
  printf("consumer (C): rank %d of %d: %s\n", rank, size, failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
