// crossover.h — where one allreduce algorithm starts beating another: measured (from the
// medians of `quorum-bench algos`) next to what the alpha-beta cost model predicts once it is
// fitted to the same medians, the same CostModel the coordinator runs (the hierarchical
// algorithm's two levels fitted from its per-level times). Printed by rank 0.
#pragma once

#include "tools/bench/algos.h"

namespace quorum::bench {

void print_crossovers(const AlgosResult& result, int ranks);

}  // namespace quorum::bench
