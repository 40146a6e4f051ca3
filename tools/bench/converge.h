// quorum-bench converge: real training to a held-out loss under one synchronisation mode (the
// QUORUM_* environment of the run: QUORUM_SYNC_MODE, QUORUM_COMPRESSION, ...), with simulated
// stragglers. Each rank trains an MLP (tools/mlp.h) on its slice of every global batch of a
// generated dataset (a random teacher network's labels) and evaluates its replica on a held-out
// split every few steps, outside the timed path. The training loop is the one a framework
// would write for every mode: begin_step(), gradients allreduced unless the step is local,
// SGD, average_parameters() when the plan says so, bounded mode's late gradients folded at the
// end. scripts/converge.sh runs the matrix of modes and scenarios and makes the README table.
#pragma once

#include <cstdint>
#include <string>

namespace quorum::bench {

struct ConvergeArgs {
  std::string model = "mlp";      // mlp: 16-64-64-1; wide: 64-1536-1536-1 (2.5 M parameters)
  std::string straggler = "none"; // none | transient | persistent
  int steps = 300;
  int batch = 128;                // global; divisible by the rank count
  int samples = 16384;            // training split
  int held_out = 2048;            // held-out split
  int eval_every = 10;
  float lr = 0.5f;
  double compute_ms = 10;         // simulated compute per step on top of the real forward/backward
  double transient_p = 0.5;       // transient: chance per step that one random rank is slowed
  uint64_t seed = 1;
  bool curve = false;             // print every evaluation point
  // A rank behind on bounded rounds skips its compute and takes the missed rounds' results
  // (quorum::enqueue_catch_up) instead of computing gradients the others have moved past.
  bool catch_up = false;
};

// Collective (quorum initialised). Prints on rank 0; returns 0, or 1 when a quorum call failed
// or the replicas ended up different.
int run_converge(const ConvergeArgs& args);

}  // namespace quorum::bench
