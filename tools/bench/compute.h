// compute.h — the stand-in for a backward pass's arithmetic: a loop of floating-point work,
// calibrated once so a given number of milliseconds means a fixed amount of work (so a core
// shared with quorum's engine or MPI progress really takes longer, as real compute would), and
// the per-step compute schedule with jitter and an optional straggler.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace quorum::bench {

// Busy floating-point work. One object per thread.
class BusyCompute {
 public:
  // Work units this core does per millisecond when undisturbed (best of five ~10 ms trials).
  static double measure_units_per_ms();

  explicit BusyCompute(double units_per_ms) : units_per_ms_(units_per_ms) {}
  // Does `ms` milliseconds' worth of calibrated work. Fractions of a unit carry over to the
  // next call, so many tiny calls add up to the same work as one large one.
  void run_ms(double ms);
  double units_per_ms() const { return units_per_ms_; }

 private:
  double units_per_ms_;
  double carry_ = 0;
};

// "rank:probability:slowdown", e.g. 1:0.5:1.5 — rank 1 is 1.5x slower on half the steps.
struct Straggler {
  int rank = -1;  // -1: none
  double probability = 0;
  double slowdown = 1;
};
bool parse_straggler(std::string_view text, Straggler* out);

struct ComputeSchedule {
  double compute_ms = 0;  // per step, before jitter
  double jitter = 0;      // uniform in [-jitter, +jitter] as a fraction of compute_ms
  Straggler straggler;
  uint64_t seed = 0;
};

// This rank's compute milliseconds for steps 0..steps-1; a function of (seed, rank, step) only,
// so every variant of a run replays the same compute.
std::vector<double> step_compute_ms(const ComputeSchedule& schedule, int rank, int steps);

}  // namespace quorum::bench
