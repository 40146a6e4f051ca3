// checker.h — counts the wrong repetitions of one CollectiveCase on this rank and describes the
// first few (to stderr and to an error list), naming rank, collective, dtype, size, repetition
// and implementation; and one timed, verified repetition through quorum. Shared by the sweep
// and the algorithm comparison.
#pragma once

#include <string>
#include <vector>

#include "quorum/quorum.h"
#include "tools/bench/collective_case.h"

namespace quorum::bench {

class Checker {
 public:
  // `errors` receives the descriptions; it must outlive the checker.
  Checker(const CollectiveCase& c, Collective collective, DataType t, int rank,
          std::vector<std::string>* errors)
      : case_(c), collective_(collective), type_(t), rank_(rank), errors_(errors) {}

  // After one run of `impl` ("quorum", "mpi", a setting's name): `status` is what it returned.
  // `rep` < 0 counts warm-up repetitions (-1 the first).
  void check(const std::string& impl, int rep, const Status& status);
  long long wrong() const { return wrong_; }

 private:
  static constexpr long long kReported = 3;
  const CollectiveCase& case_;
  Collective collective_;
  DataType type_;
  int rank_;
  std::vector<std::string>* errors_;
  long long wrong_ = 0;
};

// One repetition through quorum: prepares the case, starts after a barrier (collective over
// MPI_COMM_WORLD), and verifies the output outside the timed region as `impl`. Returns seconds.
double timed_quorum_repetition(CollectiveCase& c, Checker& checker, const std::string& impl,
                               int rep);

}  // namespace quorum::bench
