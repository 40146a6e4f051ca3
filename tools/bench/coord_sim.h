// coord_sim.h — rank 0's coordinator under N simulated ranks, without sockets or MPI: the real
// coord::CoordinatorService is fed what its server would receive from N engines training on a
// gradient list, on a virtual clock, and what it returns is delivered back to the simulated
// engines as the server would send it (a kAllRanks message is one frame per live rank).
//
// The engines are modelled after runtime/: each rank's gradients become ready in backward order
// with a small random per-rank swap of neighbours and a per-rank start skew; on the coordinator
// path the readiness gate (runtime/ready_gate.h) holds a learned group's members until all are
// ready here, then one Ready goes out; a Schedule riding in a PlanBatch is taken on receipt, and
// from then on ranks agree among themselves (an MPI allreduce rank 0's coordinator never sees):
// rank 0 only gets a FastReport per rank every 8 fast steps (auto policy), or a FastExit and the
// held requests' Ready when a rank leaves (a later bucket's tensor held for a cycle time before
// the one due). Heartbeats (one per rank per second each way) are counted apart: they are per
// second, not per step. Data collectives take no time here. Pure, single-threaded, deterministic
// for a seed but for the measured CPU times.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace quorum::bench {

// The gradients of one step, in forward order (backward produces them last to first).
struct SimTensor {
  std::string name;
  int64_t numel = 0;    // f32 elements
  double ready_at = 0;  // when backward produces it, as a fraction of the backward pass
};

struct CoordSimOptions {
  int ranks = 8;
  int steps = 20;
  uint64_t seed = 1;
  bool fast_path = true;
  double step_ms = 100;       // one training step; backward runs from 10% to 90% of it
  double skew_us = 500;       // each rank's backward starts up to this much late, per step
  double swap = 0.05;         // chance that a rank swaps two neighbouring gradients ...
  double swap_gap_us = 100;   // ... that are ready within this of each other
  bool swap_per_step = false;  // the swapped pairs: drawn once per rank, or afresh every step
  double latency_us = 20;     // one way, rank <-> rank 0 (plus up to half again, per message)
  double cycle_ms = 1;        // QUORUM_CYCLE_TIME_MS (fusion hold and readiness-gate hold)
};

// What rank 0's coordinator did in one step (a window of step_ms of the virtual clock).
struct SimStep {
  double cpu_us = 0;  // CoordinatorService calls only (on_tick excluded), thread CPU time
  uint64_t msgs_in = 0, msgs_out = 0, bytes_in = 0, bytes_out = 0;  // frames, heartbeats aside
  uint64_t readies_in = 0, reports_in = 0, exits_in = 0;
  uint64_t plans = 0;     // plans the coordinator emitted
  uint64_t fast_entries = 0;  // schedule entries the ranks ran among themselves
  bool on_schedule = false;   // the ranks ran the whole step on a schedule
};

struct SimResult {
  std::vector<SimStep> steps;
  uint64_t schedules_issued = 0;
  int first_schedule_step = -1;  // the step in whose window the first schedule went out
  uint64_t fallbacks = 0;        // schedules the ranks left
  uint64_t fast_exits = 0;       // FastExit messages rank 0 received
  // Heartbeats, per second of virtual time: every rank sends one, on_tick sends one per rank.
  double heartbeats_in_per_s = 0, heartbeats_out_per_s = 0;
  double heartbeat_bytes_in_per_s = 0, heartbeat_bytes_out_per_s = 0;
  double tick_cpu_us = 0;        // median CPU of one on_tick call
  double virtual_s = 0;
  double wall_s = 0;
  std::vector<std::string> log;  // the service's log lines (mode switches, stalls)
};

SimResult simulate_coordinator(const CoordSimOptions& options,
                               const std::vector<SimTensor>& tensors);

}  // namespace quorum::bench
