#include "tools/bench/checker.h"

#include <mpi.h>

#include <chrono>
#include <cstdio>

#include "tools/bench/stats.h"

namespace quorum::bench {

void Checker::check(const std::string& impl, int rep, const Status& status) {
  std::string what;
  if (!status.is_ok()) {
    what = "quorum returned an error: " + status.message();
  } else if (auto m = case_.check()) {
    what = "element " + std::to_string(m->index) + " is " + m->got + ", expected " + m->want;
  } else {
    return;
  }
  ++wrong_;
  if (wrong_ > kReported) return;
  char where[200];
  std::snprintf(where, sizeof where, "rank %d: %s %s %zu bytes, %s %d, %s: ", rank_,
                std::string(collective_name(collective_)).c_str(),
                std::string(dtype_name(type_)).c_str(), case_.bytes(),
                rep < 0 ? "warm-up" : "repetition", rep < 0 ? -rep : rep + 1, impl.c_str());
  errors_->push_back(where + what);
  std::fprintf(stderr, "quorum-bench: %s\n", errors_->back().c_str());
}

double timed_quorum_repetition(CollectiveCase& c, Checker& checker, const std::string& impl,
                               int rep) {
  c.prepare_quorum();
  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = std::chrono::steady_clock::now();
  const Status s = c.run_quorum();
  const double seconds = seconds_since(t0);
  checker.check(impl, rep, s);
  return seconds;
}

}  // namespace quorum::bench
