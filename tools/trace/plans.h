// plans.h — what the fusion planner did (plans, tensors per plan, bytes) and which tensors took
// longest from enqueue to the end of their collective, from the plan ids the events carry.
// Pure functions of loaded traces; results are plain data.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tools/trace/trace_file.h"

namespace quorum::trace {

// Over the distinct plans seen on any rank (plan ids are global; a plan counted once).
struct FusionStats {
  int64_t plans = 0;
  int64_t tensors = 0;  // summed over plans
  double tensors_per_plan_mean = 0;
  int64_t tensors_per_plan_max = 0;
  int64_t bytes_total = 0;
  double bytes_per_plan_mean = 0;
  int64_t bytes_per_plan_min = 0;
  int64_t bytes_per_plan_max = 0;
  int64_t fused_plans = 0;                    // plans holding more than one tensor
  std::map<std::string, int64_t> ops;         // collective name → plans
  std::map<std::string, int64_t> algorithms;  // args.algorithm → plans
};

// One tensor name over all its occurrences: an occurrence is (rank, plan). Its time is its own
// negotiate + queue events plus the pack, collective and unpack of its plan on that rank
// (the length of their union).
struct TensorLatency {
  std::string name;
  int64_t occurrences = 0;
  double total_us = 0;
  double mean_us = 0;
  double max_us = 0;
  double negotiate_mean_us = 0;
  double queue_mean_us = 0;
  double collective_mean_us = 0;
};

FusionStats fusion_stats(const std::vector<TraceFile>& traces);

// Every tensor, slowest first (by mean_us, then name).
std::vector<TensorLatency> tensor_latencies(const std::vector<TraceFile>& traces);

}  // namespace quorum::trace
