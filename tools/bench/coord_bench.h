// coord_bench.h — `quorum-bench coordinator`: rank 0's coordinator cost per training step with N
// simulated ranks (tools/bench/coord_sim.h), on the coordinator path (QUORUM_FAST_PATH=0) and on
// the fast path, side by side. A plain process: no MPI, no mpiexec. Main thread only.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "tools/bench/coord_sim.h"

namespace quorum::bench {

struct CoordBenchArgs {
  int ranks = 8;
  int tensors = 161;  // 161: ResNet-50's gradient list; otherwise synthetic sizes
  int steps = 20;
  int warmup = 3;     // coordinator path: steps left out of the steady state
  CoordSimOptions sim;  // seed, timing and jitter (ranks, steps and fast_path are set per run)
};

// Runs both paths; prints the table (or, with json_path "-", the JSON alone) on stdout and
// writes the JSON to json_path unless it is empty or "-". Returns the exit status.
int run_coordinator_bench(const CoordBenchArgs& args, const std::string& json_path);

// The gradient list of a run: ResNet-50's for 161 tensors, else `count` seeded synthetic sizes.
std::vector<SimTensor> sim_tensors(int count, uint64_t seed, std::string* source);

}  // namespace quorum::bench
