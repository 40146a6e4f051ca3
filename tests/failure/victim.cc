// A job in which one rank fails mid-training: `victim stop|kill|kill0`. Rank size-1 (or rank 0
// for kill0) stops itself with SIGSTOP or kills itself with SIGKILL at round 20 (by then the
// steady-state fast path runs the rounds, and the victim says how many it ran); every other rank
// must see its pending handle fail with a message naming the failure, within
// QUORUM_FAILURE_TIMEOUT_SEC (plus a second of ticking), and then exit. Run by
// tests/failure/run.sh under mpiexec -disable-auto-cleanup, which checks the output.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "quorum/quorum.h"

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "stop";
  if (!quorum::init().is_ok()) return 1;
  const int rank = quorum::rank(), size = quorum::size();
  const int victim = mode == "kill0" ? 0 : size - 1;
  std::vector<float> x(1024, 1.0f);
  quorum::Tensor t{x.data(), quorum::DataType::kF32, {1024}, quorum::Device::host()};
  auto failed_at = std::chrono::steady_clock::now();
  for (int round = 0; round < 1000; ++round) {
    if (round == 20 && rank == victim) {
      std::printf("VICTIM rank %d pid %d: %s after %llu fast plans\n", rank, getpid(),
                  mode.c_str(), static_cast<unsigned long long>(quorum::stats().fast_plans));
      std::fflush(stdout);
      raise(mode == "stop" ? SIGSTOP : SIGKILL);
    }
    if (round == 20) failed_at = std::chrono::steady_clock::now();
    quorum::Status s = quorum::wait(quorum::enqueue_allreduce("x", t, t, quorum::ReduceOp::kMax));
    if (!s.is_ok()) {
      double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - failed_at).count();
      // Later requests fail at once, too.
      quorum::Status again = quorum::wait(quorum::enqueue_allreduce("y", t, t));
      std::printf("SURVIVOR rank %d failed after %.2f s: %s | later: %s\n", rank, secs,
                  s.message().c_str(), again.message().c_str());
      std::fflush(stdout);
      // Rank 0 hosts the coordinator: give the notices a moment to reach every survivor.
      std::this_thread::sleep_for(std::chrono::seconds(1));
      std::printf("rank %d shutdown: %s\n", rank, quorum::shutdown().message().c_str());
      std::fflush(stdout);
      _exit(0);
    }
  }
  std::printf("rank %d: no failure seen\n", rank);
  return 1;
}
