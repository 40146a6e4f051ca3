// Lifecycle when the application owns MPI: enqueue before init and after shutdown fail at once;
// init and shutdown are idempotent; shutdown with pending work fails that work with
// "shut down"; quorum can start again while MPI lives. Plain asserts (no GoogleTest) so the
// checks run in a fixed order around init and shutdown.
#include <mpi.h>

#include <cstdio>
#include <string>
#include <vector>

#include "quorum/quorum.h"

namespace {

int g_failures = 0;
int g_rank = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "[rank %d] FAILED: %s\n", g_rank, what.c_str());
    ++g_failures;
  }
}

quorum::Tensor f32(std::vector<float>& v) {
  return {v.data(), quorum::DataType::kF32, {static_cast<int64_t>(v.size())}, quorum::Device::host()};
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  std::vector<float> x(4, 1.0f);

  quorum::Status s = quorum::wait(quorum::enqueue_allreduce("early", f32(x), f32(x)));
  check(s.code() == quorum::StatusCode::kFailedPrecondition &&
            s.message() == "tensor 'early': quorum is not initialised (call quorum::init())",
        "enqueue before init: " + s.message());
  check(quorum::rank() == -1 && !quorum::is_initialized(), "rank() before init is -1");

  for (int cycle = 0; cycle < 2; ++cycle) {
    s = quorum::init();
    check(s.is_ok(), "init: " + s.message());
    check(quorum::init().is_ok(), "second init is a no-op");
    check(quorum::rank() == g_rank && quorum::size() == world, "rank/size match MPI");
    check(quorum::local_size() >= 1 && quorum::local_rank() < quorum::local_size(), "local ranks");

    x.assign(4, 1.0f);
    s = quorum::wait(quorum::enqueue_allreduce("sum", f32(x), f32(x), quorum::ReduceOp::kSum));
    check(s.is_ok() && x[0] == static_cast<float>(world), "allreduce after init");

    // Only rank 0 enqueues "orphan": with other ranks it can never run, so shutdown must fail it.
    int callbacks = 0;
    quorum::Handle orphan;
    std::vector<float> y(4, 1.0f);
    if (g_rank == 0) {
      orphan = quorum::enqueue_allreduce("orphan", f32(y), f32(y), quorum::ReduceOp::kSum,
                                         [&](const quorum::Status&) { ++callbacks; });
    }
    MPI_Barrier(MPI_COMM_WORLD);
    check(quorum::shutdown().is_ok(), "shutdown");
    check(quorum::shutdown().is_ok(), "second shutdown is a no-op");
    if (g_rank == 0) {
      s = quorum::wait(orphan);
      if (world == 1) {
        check(s.is_ok(), "a 1-rank job runs the tensor before shutdown: " + s.message());
      } else {
        check(s.code() == quorum::StatusCode::kAborted &&
                  s.message().find("tensor 'orphan'") != std::string::npos &&
                  s.message().find("shut down") != std::string::npos,
              "pending work fails with 'shut down': " + s.message());
      }
      check(callbacks == 1, "the callback ran exactly once");
    }
    s = quorum::wait(quorum::enqueue_allreduce("late", f32(x), f32(x)));
    check(s.code() == quorum::StatusCode::kFailedPrecondition &&
              s.message() == "tensor 'late': quorum is shut down",
          "enqueue after shutdown: " + s.message());
  }
  int finalized = 0;
  MPI_Finalized(&finalized);
  check(!finalized, "quorum leaves the application's MPI alone");
  int failures = 0;
  MPI_Allreduce(&g_failures, &failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Finalize();
  if (g_rank == 0) std::printf("lifecycle: %s (%d failed checks over all ranks)\n", failures ? "FAILED" : "passed", failures);
  return g_failures ? 1 : 0;
}
