/* The C ABI from a C program, under mpiexec -n 1..4: lifecycle, every collective with exact
 * checks, completion callbacks with user data, the allgather allocator, bad input returning
 * codes with messages naming the tensor, a cross-rank mismatch, timeline, mark_step, stats and
 * flush. Run with QUORUM_SYNC_MODE=bounded too: then rounds may complete without a straggler
 * and flush folds its late gradients back through the fold callback. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "quorum_c.h"

static int failures = 0;
#define CHECK(cond, ...)                                                      \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "[rank %d] FAILED line %d: ", quorum_rank(), __LINE__); \
      fprintf(stderr, __VA_ARGS__);                                           \
      fputc('\n', stderr);                                                    \
      failures++;                                                             \
    }                                                                         \
  } while (0)

/* What a completion callback saw. */
typedef struct {
  int calls;
  int code;
  char message[256];
} done_record;

static void on_done(int code, const char* message, void* user_data) {
  done_record* r = (done_record*)user_data;
  r->calls++;
  r->code = code;
  snprintf(r->message, sizeof r->message, "%s", message);
}

/* Allocator state for an allgather: the shape it was asked for and the memory it gave. */
typedef struct {
  int calls;
  int ndim;
  int64_t shape[4];
  int64_t* data;
  int fail; /* return NULL */
  done_record done;
} gather_ctx;

static void* gather_alloc(const int64_t* shape, int ndim, void* user_data) {
  gather_ctx* g = (gather_ctx*)user_data;
  g->calls++;
  g->ndim = ndim;
  int64_t n = 1;
  for (int i = 0; i < ndim && i < 4; ++i) {
    g->shape[i] = shape[i];
    n *= shape[i];
  }
  if (g->fail) return NULL;
  g->data = (int64_t*)calloc((size_t)(n > 0 ? n : 1), sizeof(int64_t));
  return g->data;
}

static void gather_done(int code, const char* message, void* user_data) {
  on_done(code, message, &((gather_ctx*)user_data)->done);
}

/* What flush's fold callback saw. */
typedef struct {
  int calls;
  int64_t gradients;
  double applied; /* sum of result * gradients: back to the plain sum */
  int wrong;
} fold_ctx;

static void on_fold(const char* name, const void* result, quorum_dtype dtype, const int64_t* shape,
                    int ndim, int64_t gradients, void* user_data) {
  fold_ctx* f = (fold_ctx*)user_data;
  f->calls++;
  if (strcmp(name, "c.rounds") != 0 || dtype != QUORUM_F32 || ndim != 1 || shape[0] != 4) {
    f->wrong++;
    return;
  }
  f->gradients += gradients;
  f->applied += (double)((const float*)result)[0] * (double)gradients;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Enqueues a request that must be rejected at once and checks code, message and callback. */
static void expect_rejected(quorum_handle* h, done_record* rec, int code, const char* needle,
                            const char* what) {
  char err[256] = "untouched";
  int rc = quorum_wait(h, err, sizeof err);
  CHECK(h != NULL, "%s: NULL handle", what);
  CHECK(rc == code, "%s: code %d (%s), wanted %d: %s", what, rc, quorum_status_name(rc), code, err);
  CHECK(strstr(err, needle) != NULL, "%s: message '%s' lacks '%s'", what, err, needle);
  CHECK(quorum_poll(h) == 1, "%s: poll", what);
  CHECK(rec->calls == 1 && rec->code == code && strcmp(rec->message, err) == 0,
        "%s: callback %d calls, code %d, '%s'", what, rec->calls, rec->code, rec->message);
  quorum_handle_free(h);
  memset(rec, 0, sizeof *rec);
}

static void test_collectives(int rank, int size) {
  char err[256];
  /* allreduce Sum with a completion callback and user data */
  double v[3] = {rank, 2.0 * rank, 1.0};
  int64_t shape[1] = {3};
  done_record rec = {0};
  quorum_handle* h =
      quorum_allreduce("c.sum", v, v, QUORUM_F64, shape, 1, QUORUM_SUM, on_done, &rec);
  int rc = quorum_wait(h, err, sizeof err);
  CHECK(rc == QUORUM_OK && err[0] == '\0', "allreduce: %s", err);
  double tri = size * (size - 1) / 2.0;
  CHECK(v[0] == tri && v[1] == 2 * tri && v[2] == size, "allreduce values %g %g %g", v[0], v[1],
        v[2]);
  CHECK(rec.calls == 1 && rec.code == 0 && rec.message[0] == '\0', "callback %d %d", rec.calls,
        rec.code);
  CHECK(quorum_poll(h) == 1, "poll after wait");
  CHECK(quorum_result_count(h) == size, "result_count %lld", (long long)quorum_result_count(h));
  CHECK(quorum_wait(h, err, sizeof err) == QUORUM_OK && rec.calls == 1, "second wait");
  quorum_handle_free(h);

  /* Average, Min, Max on a 2-D f32 / i32, no callback */
  float a[2][2] = {{(float)rank, 1.0f}, {2.0f * rank, (float)size}};
  int64_t shape2[2] = {2, 2};
  h = quorum_allreduce("c.avg", a, a, QUORUM_F32, shape2, 2, QUORUM_AVERAGE, NULL, NULL);
  CHECK(quorum_wait(h, err, sizeof err) == QUORUM_OK, "average: %s", err);
  CHECK(a[0][0] == (float)(tri / size) && a[0][1] == 1.0f && a[1][0] == (float)(2 * tri / size) &&
            a[1][1] == (float)size,
        "average values %g %g %g %g", a[0][0], a[0][1], a[1][0], a[1][1]);
  quorum_handle_free(h);
  int32_t mn[2] = {rank, -rank}, mx[2] = {rank, -rank};
  int64_t s2[1] = {2};
  quorum_handle* hmin =
      quorum_allreduce("c.min", mn, mn, QUORUM_I32, s2, 1, QUORUM_MIN, NULL, NULL);
  quorum_handle* hmax =
      quorum_allreduce("c.max", mx, mx, QUORUM_I32, s2, 1, QUORUM_MAX, NULL, NULL);
  CHECK(quorum_wait(hmin, err, sizeof err) == QUORUM_OK && mn[0] == 0 && mn[1] == -(size - 1),
        "min %d %d: %s", mn[0], mn[1], err);
  CHECK(quorum_wait(hmax, err, sizeof err) == QUORUM_OK && mx[0] == size - 1 && mx[1] == 0,
        "max %d %d: %s", mx[0], mx[1], err);
  quorum_handle_free(hmin);
  quorum_handle_free(hmax);

  /* broadcast from the last rank, with a callback */
  int root = size - 1;
  int32_t b[2] = {rank == root ? 7 : -1, rank == root ? 9 : -1};
  memset(&rec, 0, sizeof rec);
  h = quorum_broadcast("c.bcast", b, QUORUM_I32, s2, 1, root, on_done, &rec);
  CHECK(quorum_wait(h, err, sizeof err) == QUORUM_OK && b[0] == 7 && b[1] == 9, "broadcast: %s",
        err);
  CHECK(rec.calls == 1 && rec.code == 0, "broadcast callback");
  CHECK(quorum_result_count(h) == 0, "result_count of a broadcast");
  quorum_handle_free(h);

  /* allgather: rank r gives r+1 rows of 2 values (r, row) */
  int64_t rows = rank + 1, in[2 * 4];
  for (int i = 0; i < rows; ++i) {
    in[2 * i] = rank;
    in[2 * i + 1] = i;
  }
  int64_t gshape[2] = {rows, 2};
  gather_ctx g;
  memset(&g, 0, sizeof g);
  h = quorum_allgather("c.gather", in, QUORUM_I64, gshape, 2, gather_alloc, &g, gather_done, &g);
  rc = quorum_wait(h, err, sizeof err);
  int64_t total_rows = (int64_t)size * (size + 1) / 2;
  CHECK(rc == QUORUM_OK, "allgather: %s", err);
  CHECK(g.calls == 1 && g.ndim == 2 && g.shape[0] == total_rows && g.shape[1] == 2,
        "allocator: %d calls, ndim %d, shape [%lld,%lld]", g.calls, g.ndim, (long long)g.shape[0],
        (long long)g.shape[1]);
  CHECK(g.done.calls == 1 && g.done.code == 0, "allgather callback");
  if (rc == QUORUM_OK && g.data) {
    int64_t row = 0;
    for (int r = 0; r < size; ++r) {
      for (int i = 0; i <= r; ++i, ++row) {
        CHECK(g.data[2 * row] == r && g.data[2 * row + 1] == i, "gathered row %lld",
              (long long)row);
      }
    }
  }
  free(g.data);
  quorum_handle_free(h);

  /* an allocator that returns NULL fails the operation (on every rank that refused) */
  memset(&g, 0, sizeof g);
  g.fail = 1;
  h = quorum_allgather("c.gather_null", in, QUORUM_I64, gshape, 2, gather_alloc, &g, gather_done,
                       &g);
  rc = quorum_wait(h, err, sizeof err);
  CHECK(rc != QUORUM_OK && strstr(err, "c.gather_null") && g.calls == 1 && g.done.calls == 1,
        "allocator NULL: %d %s", rc, err);
  quorum_handle_free(h);
}

static void test_bad_input(int rank, int size) {
  done_record rec = {0};
  float f[4] = {0};
  int64_t shape[1] = {4};
  expect_rejected(
      quorum_allreduce("c.null", NULL, NULL, QUORUM_F32, shape, 1, QUORUM_SUM, on_done, &rec), &rec,
      QUORUM_INVALID_ARGUMENT, "tensor 'c.null': input data pointer is null", "null data");
  expect_rejected(
      quorum_allreduce("c.dtype", f, f, (quorum_dtype)42, shape, 1, QUORUM_SUM, on_done, &rec),
      &rec, QUORUM_INVALID_ARGUMENT, "tensor 'c.dtype': unsupported dtype value 42", "dtype");
  expect_rejected(
      quorum_allreduce("c.op", f, f, QUORUM_F32, shape, 1, (quorum_op)-3, on_done, &rec), &rec,
      QUORUM_INVALID_ARGUMENT, "tensor 'c.op': unsupported reduce op value -3", "op");
  expect_rejected(quorum_allreduce("c.shape", f, f, QUORUM_F32, NULL, 2, QUORUM_SUM, on_done, &rec),
                  &rec, QUORUM_INVALID_ARGUMENT, "tensor 'c.shape': shape is NULL but ndim is 2",
                  "shape");
  int64_t neg[2] = {2, -5};
  expect_rejected(quorum_broadcast("c.neg", f, QUORUM_F32, neg, 2, 0, on_done, &rec), &rec,
                  QUORUM_INVALID_ARGUMENT, "tensor 'c.neg': input dimension 1 is negative (-5)",
                  "negative");
  expect_rejected(quorum_broadcast("c.root", f, QUORUM_F32, shape, 1, size, on_done, &rec), &rec,
                  QUORUM_INVALID_ARGUMENT, "tensor 'c.root': broadcast root", "root");
  expect_rejected(quorum_allgather("c.noalloc", f, QUORUM_F32, shape, 1, NULL, NULL, on_done, &rec),
                  &rec, QUORUM_INVALID_ARGUMENT,
                  "tensor 'c.noalloc': allgather needs an output allocator", "alloc");
  expect_rejected(quorum_allreduce(NULL, f, f, QUORUM_F32, shape, 1, QUORUM_SUM, on_done, &rec),
                  &rec, QUORUM_INVALID_ARGUMENT, "the name is NULL", "null name");

  char err[256] = "x";
  CHECK(quorum_wait(NULL, err, sizeof err) == QUORUM_INVALID_ARGUMENT && strstr(err, "NULL"),
        "wait NULL");
  CHECK(quorum_start_timeline(NULL, err, sizeof err) == QUORUM_INVALID_ARGUMENT, "timeline NULL");
  /* a short buffer gets a truncated, terminated message; NULL err is allowed */
  char small[8];
  quorum_handle* h =
      quorum_allreduce("c.trunc", NULL, NULL, QUORUM_F32, shape, 1, QUORUM_SUM, NULL, NULL);
  CHECK(quorum_wait(h, small, sizeof small) != 0 && strlen(small) == 7, "truncation '%s'", small);
  CHECK(quorum_wait(h, NULL, 0) == QUORUM_INVALID_ARGUMENT, "NULL err");
  quorum_handle_free(h);

  /* ranks that disagree about a shape all get QUORUM_MISMATCH naming the tensor */
  if (size > 1) {
    float m[8] = {0};
    int64_t ms[1] = {rank == 0 ? 2 : 3};
    memset(&rec, 0, sizeof rec);
    h = quorum_allreduce("c.mismatch", m, m, QUORUM_F32, ms, 1, QUORUM_SUM, on_done, &rec);
    int rc = quorum_wait(h, err, sizeof err);
    CHECK(rc == QUORUM_MISMATCH && strstr(err, "tensor 'c.mismatch'") && strstr(err, "shape"),
          "mismatch: %d %s", rc, err);
    CHECK(rec.calls == 1 && rec.code == QUORUM_MISMATCH, "mismatch callback");
    quorum_handle_free(h);
  }
}

/* Rounds of one tensor with a rotating straggler; every gradient counts exactly once across
 * the rounds' result counts and flush's folds (in sync mode, folds never happen). */
static void test_rounds_and_flush(int rank, int size) {
  enum { kRounds = 12 };
  char err[256];
  int64_t counted = 0;
  double applied = 0;
  int64_t shape[1] = {4};
  for (int j = 0; j < kRounds; ++j) {
    sleep_ms(j % size == rank ? 12 : 1);
    float v[4], out[4];
    for (int i = 0; i < 4; ++i) v[i] = (float)(rank + 1);
    quorum_handle* h =
        quorum_allreduce("c.rounds", v, out, QUORUM_F32, shape, 1, QUORUM_SUM, NULL, NULL);
    CHECK(quorum_wait(h, err, sizeof err) == QUORUM_OK, "round %d: %s", j, err);
    int64_t c = quorum_result_count(h);
    CHECK(c > 0 && c <= size * 3, "round %d count %lld", j, (long long)c);
    counted += c;
    applied += out[0];
    quorum_handle_free(h);
    quorum_mark_step();
  }
  fold_ctx fold;
  memset(&fold, 0, sizeof fold);
  int rc = quorum_flush(on_fold, &fold, err, sizeof err);
  CHECK(rc == QUORUM_OK, "flush: %s", err);
  CHECK(fold.wrong == 0, "fold callback saw the wrong tensor");
  CHECK(counted + fold.gradients == (int64_t)size * kRounds, "counts %lld + folded %lld != %d",
        (long long)counted, (long long)fold.gradients, size * kRounds);
  double expected = kRounds * size * (size + 1) / 2.0;
  CHECK(applied + fold.applied == expected, "applied %g + folded %g != %g", applied, fold.applied,
        expected);

  quorum_stats st;
  memset(&st, 0xff, sizeof st);
  CHECK(quorum_get_stats(&st, sizeof st) == QUORUM_OK, "stats");
  CHECK(st.steps == kRounds && st.tensors > 0 && st.errors > 0 && st.plans > 0 && st.bytes > 0,
        "stats steps %llu tensors %llu errors %llu", (unsigned long long)st.steps,
        (unsigned long long)st.tensors, (unsigned long long)st.errors);
  CHECK(st.folded == (uint64_t)fold.gradients, "stats folded %llu", (unsigned long long)st.folded);
  /* an older, smaller struct gets only the prefix it knows */
  quorum_stats part;
  memset(&part, 0xab, sizeof part);
  quorum_get_stats(&part, sizeof(uint64_t));
  CHECK(part.steps == kRounds && part.plans == 0xababababababababull, "stats prefix");
  CHECK(quorum_get_stats(NULL, sizeof st) == QUORUM_INVALID_ARGUMENT, "stats NULL");
  /* Every round taken: nothing to catch up, and a catch-up says so, naming the tensor. */
  CHECK(quorum_rounds_behind() == 0, "rounds_behind %llu after flush",
        (unsigned long long)quorum_rounds_behind());
  float taken[4];
  done_record rec;
  memset(&rec, 0, sizeof rec);
  expect_rejected(quorum_catch_up("c.rounds", taken, QUORUM_F32, shape, 1, QUORUM_SUM, on_done,
                                  &rec),
                  &rec, QUORUM_FAILED_PRECONDITION, "'c.rounds'", "catch-up not behind");
  memset(&rec, 0, sizeof rec);
  expect_rejected(quorum_catch_up("c.rounds", taken, QUORUM_F32, shape, 1, (quorum_op)42, on_done,
                                  &rec),
                  &rec, QUORUM_INVALID_ARGUMENT, "reduce op", "catch-up bad op");
  if (rank == 0) {
    printf("c_abi: %d rounds, %llu bounded plans, %lld late gradients folded by flush\n", kRounds,
           (unsigned long long)st.bounded_plans, (long long)fold.gradients);
  }
}

static void test_timeline(int rank) {
  char err[256], path[128], written[160];
  snprintf(path, sizeof path, "/tmp/quorum_c_abi_%ld.json", (long)getpid());
  snprintf(written, sizeof written, "/tmp/quorum_c_abi_%ld.rank%d.json", (long)getpid(), rank);
  CHECK(quorum_start_timeline(path, err, sizeof err) == QUORUM_OK, "start_timeline: %s", err);
  float v[2] = {1, 2};
  int64_t shape[1] = {2};
  quorum_handle* h =
      quorum_allreduce("c.traced", v, v, QUORUM_F32, shape, 1, QUORUM_SUM, NULL, NULL);
  CHECK(quorum_wait(h, err, sizeof err) == QUORUM_OK, "traced allreduce: %s", err);
  quorum_handle_free(h);
  quorum_mark_step();
  quorum_stop_timeline();
  FILE* f = fopen(written, "r");
  CHECK(f != NULL, "timeline file %s missing", written);
  if (f) {
    char head[2] = {0};
    CHECK(fread(head, 1, 1, f) == 1 && (head[0] == '[' || head[0] == '{'), "timeline starts '%s'",
          head);
    fclose(f);
    remove(written);
  }
}

/* Periodic averaging through the C ABI: a step plan (sync mode: a gradient step), then every
 * rank's own values averaged exactly, with a NULL name rejected. */
static void test_periodic(int rank, int size) {
  char err[256];
  int local = -1, average = -1;
  uint64_t step = quorum_begin_step(&local, &average);
  CHECK(local == 0 && average == 0, "begin_step in sync mode: local %d average %d", local, average);
  CHECK(quorum_begin_step(NULL, NULL) == step + 1, "begin_step counts steps");
  double w[3] = {(double)rank, 2.0 * rank, -1.0};
  int64_t shape[1] = {3};
  quorum_named_tensor p = {"c.w", w, QUORUM_F64, shape, 1};
  int rc = quorum_average_parameters(&p, 1, err, sizeof err);
  double mean = (size - 1) / 2.0;
  CHECK(rc == QUORUM_OK && w[0] == mean && w[1] == 2 * mean && w[2] == -1.0,
        "average_parameters: %s (%g %g %g)", err, w[0], w[1], w[2]);
  quorum_stats st;
  quorum_get_stats(&st, sizeof st);
  CHECK(st.averagings == 1, "averagings %llu", (unsigned long long)st.averagings);
  quorum_named_tensor bad = {NULL, w, QUORUM_F64, shape, 1};
  rc = quorum_average_parameters(&bad, 1, err, sizeof err);
  CHECK(rc == QUORUM_INVALID_ARGUMENT && strstr(err, "NULL name") != NULL,
        "NULL parameter name: %d %s", rc, err);
}

int main(void) {
  char err[256];
  CHECK(quorum_abi_version() == QUORUM_C_ABI_VERSION, "abi version");
  CHECK(strcmp(quorum_status_name(QUORUM_MISMATCH), "mismatch") == 0 &&
            strcmp(quorum_status_name(99), "unknown status code") == 0,
        "status names");
  CHECK(quorum_is_initialized() == 0 && quorum_rank() == -1, "before init");
  done_record rec = {0};
  float f[1] = {0};
  int64_t one[1] = {1};
  expect_rejected(quorum_allreduce("c.early", f, f, QUORUM_F32, one, 1, QUORUM_SUM, on_done, &rec),
                  &rec, QUORUM_FAILED_PRECONDITION, "tensor 'c.early': quorum is not initialised",
                  "before init");

  int rc = quorum_init(err, sizeof err);
  if (rc != QUORUM_OK) {
    fprintf(stderr, "quorum_init: %s (%s)\n", err, quorum_status_name(rc));
    return 1;
  }
  CHECK(quorum_init(err, sizeof err) == QUORUM_OK, "second init");
  int rank = quorum_rank(), size = quorum_size();
  CHECK(quorum_is_initialized() == 1 && rank >= 0 && rank < size, "rank %d size %d", rank, size);
  CHECK(quorum_local_size() >= 1 && quorum_local_rank() >= 0 &&
            quorum_local_rank() < quorum_local_size(),
        "local rank %d size %d", quorum_local_rank(), quorum_local_size());

  test_collectives(rank, size);
  test_bad_input(rank, size);
  test_rounds_and_flush(rank, size);
  test_timeline(rank);
  test_periodic(rank, size);

  rc = quorum_shutdown(err, sizeof err);
  CHECK(rc == QUORUM_OK, "shutdown: %s", err);
  CHECK(quorum_shutdown(err, sizeof err) == QUORUM_OK, "second shutdown");
  CHECK(quorum_is_initialized() == 0 && quorum_rank() == -1, "after shutdown");
  expect_rejected(quorum_allreduce("c.late", f, f, QUORUM_F32, one, 1, QUORUM_SUM, on_done, &rec),
                  &rec, QUORUM_FAILED_PRECONDITION, "shut down", "after shutdown");
  if (rank == 0) printf("c_abi: %d ranks, %s\n", size, failures ? "FAILED" : "passed");
  return failures ? 1 : 0;
}
