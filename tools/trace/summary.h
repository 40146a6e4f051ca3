// summary.h — the figures `quorum-trace summary` reports, computed from the loaded files of one
// run: per step (per rank, max and mean across ranks), overall, stragglers, fusion, slowest
// tensors, time per mode, and warnings about incomplete data. Plain data; the renderers in
// report.h and plot.h only format it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tools/trace/breakdown.h"
#include "tools/trace/plans.h"
#include "tools/trace/trace_file.h"

namespace quorum::trace {

// One step number across the ranks that completed it.
struct StepSummary {
  int64_t step = 0;
  std::vector<RankStep> ranks;  // by rank; ranks that did not finish the step are absent
  Breakdown max, mean;          // field by field across `ranks`
  // Ranks named by straggler waits that blocked some rank in this step (straggler_wait > 0 on
  // it), ascending. RankStep::stragglers also lists waits that blocked nothing.
  std::vector<int64_t> stragglers;
};

struct RankTotals {
  int64_t rank = -1;
  int64_t steps = 0;
  Breakdown time;                              // summed over its steps
  std::map<std::string, double> mode_time_us;  // summed over its steps
  int64_t mode_switches = 0;
};

struct Summary {
  std::string run_id;
  int64_t size = 0;            // ranks in the run (otherData.size)
  std::vector<int64_t> ranks;  // ranks loaded
  std::vector<std::string> files;

  std::vector<StepSummary> steps;  // by step number
  std::vector<RankTotals> totals;  // by rank
  Breakdown total_max, total_mean;
  std::map<int64_t, int64_t> straggler_steps;  // rank → steps in which it was a straggler

  FusionStats fusion;
  std::vector<TensorLatency> tensors;  // slowest first

  bool has_modes = false;
  std::map<std::string, double> mode_max_us, mode_mean_us;  // across ranks' totals

  std::vector<std::string> warnings;  // dropped events, unfinished steps, missing ranks, ...
};

// `traces` as load_run returns them: one run, sorted by rank, at least one file.
Summary summarize(const std::vector<TraceFile>& traces);

// Field-by-field max and mean of `rows`; zeros when empty.
void max_and_mean(const std::vector<Breakdown>& rows, Breakdown* max, Breakdown* mean);

}  // namespace quorum::trace
