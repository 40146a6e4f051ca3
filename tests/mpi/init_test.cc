// init() failing, at every stage, when the application owns MPI (so one process can fail init
// many times): Runtime::create stopped after each stage tears down what it built, leaving no
// thread behind; a bad knob on one rank only fails every rank without a hang, the bad rank
// with the knob's own message and the others naming it; rank() then still says the MPI rank;
// afterwards quorum starts and reduces as usual. Plain checks in a fixed order (no GoogleTest).
#include <dirent.h>
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "quorum/quorum.h"
#include "runtime/runtime.h"

namespace {

int g_failures = 0;
int g_rank = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "[rank %d] FAILED: %s\n", g_rank, what.c_str());
    ++g_failures;
  }
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// This process's threads (MPICH's and UCX's own included), from /proc.
int thread_count() {
  DIR* d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

bool allreduce_works(int world) {
  std::vector<float> x(8, 1.0f);
  quorum::Tensor t{x.data(), quorum::DataType::kF32, {8}, quorum::Device::host()};
  quorum::Status s = quorum::wait(quorum::enqueue_allreduce("x", t, t, quorum::ReduceOp::kSum));
  return s.is_ok() && x[7] == static_cast<float>(world);
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  const int threads_before = thread_count();

  // 1. Every stage of Runtime::create, stopped right after it: the partial runtime is destroyed
  // inside create, on every rank together.
  for (auto stage : {quorum::InitStage::kMpi, quorum::InitStage::kCommunicator,
                     quorum::InitStage::kConfig, quorum::InitStage::kCoordinator,
                     quorum::InitStage::kConnected, quorum::InitStage::kBackends,
                     quorum::InitStage::kEngine}) {
    const std::string name = quorum::stage_name(stage);
    std::unique_ptr<quorum::Runtime> rt;
    int mpi_rank = -1;
    quorum::Status s = quorum::Runtime::create(&rt, &mpi_rank, stage);
    check(s.code() == quorum::StatusCode::kAborted && contains(s.message(), "'" + name + "'"),
          "create stopped after " + name + ": " + s.message());
    check(rt == nullptr, "no runtime handed out after a failed create (" + name + ")");
    check(mpi_rank == g_rank, "create reports the MPI rank (" + name + ")");
    check(thread_count() == threads_before,
          "no thread left after stopping at " + name + ": " + std::to_string(thread_count()) +
              " threads, " + std::to_string(threads_before) + " before");
  }

  // 2. A bad value on the last rank only.
  const int bad = world - 1;
  if (g_rank == bad) setenv("QUORUM_SYNC_MODE", "maybe", 1);
  quorum::Status s = quorum::init();
  check(!s.is_ok() && !quorum::is_initialized(), "init fails with a bad knob on rank " +
                                                      std::to_string(bad));
  if (g_rank == bad) {
    check(s.code() == quorum::StatusCode::kInvalidArgument &&
              s.message() == "QUORUM_SYNC_MODE='maybe' is not valid: expected enum in "
                             "sync|bounded|periodic|auto",
          "the bad rank names the knob, value and range: " + s.message());
  } else {
    check(s.code() == quorum::StatusCode::kAborted &&
              s.message() == "init failed on rank " + std::to_string(bad) + " (see its log)",
          "the other ranks name the rank that failed: " + s.message());
  }
  check(quorum::rank() == g_rank, "rank() after a failed init is the MPI rank: " +
                                      std::to_string(quorum::rank()));
  unsetenv("QUORUM_SYNC_MODE");

  // 3. The same with a check only the job can make (QUORUM_QUORUM above the job size).
  setenv("QUORUM_QUORUM", std::to_string(world + 1).c_str(), 1);
  s = quorum::init();
  check(contains(s.message(), "QUORUM_QUORUM=" + std::to_string(world + 1) + " exceeds"),
        "QUORUM_QUORUM above the job size: " + s.message());
  unsetenv("QUORUM_QUORUM");
  check(thread_count() == threads_before, "no thread left after failed inits");

  // 4. quorum still starts, works and stops.
  s = quorum::init();
  check(s.is_ok(), "init after failures: " + s.message());
  check(quorum::rank() == g_rank && quorum::size() == world, "rank/size after failures");
  check(allreduce_works(world), "allreduce after failed inits");
  check(quorum::shutdown().is_ok(), "shutdown");
  check(quorum::rank() == -1, "rank() after shutdown is -1");
  check(thread_count() == threads_before, "no thread left after shutdown");

  int failures = 0;
  MPI_Allreduce(&g_failures, &failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Finalize();
  if (g_rank == 0) {
    std::printf("init: %s (%d failed checks over all ranks)\n", failures ? "FAILED" : "passed",
                failures);
  }
  return g_failures ? 1 : 0;
}
