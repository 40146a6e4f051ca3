#include "tools/bench/checker.h"

#include <cstdio>

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

}  // namespace quorum::bench
