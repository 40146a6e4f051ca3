// report.h — renders a Summary for people (a fixed-width table, times in ms) or for programs
// (JSON, times in µs, the same figures). Pure functions.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "tools/trace/summary.h"

namespace quorum::trace {

// `top`: how many of the slowest tensors to list.
// `last`: per-step tables only for the last `last` steps (0 = every step).
std::string summary_text(const Summary& s, size_t top, size_t last = 0);

// {"run_id", "size", "ranks", "files", "units": "us", "steps": [{"step", "ranks": [{"rank",
//   "begin_us", "step_us", "compute_us", "exposed_us", "collective_us", "straggler_wait_us",
//   "negotiation_us", "queue_us", "other_us", "stragglers": [{"rank", "events", "blocked_us"}],
//   "mode_time_us"?}], "max": {...}, "mean": {...}, "stragglers": [ranks]}],
//  "overall": {"ranks": [{"rank", "steps", ...fields}], "max", "mean", "stragglers": [{"rank",
//   "steps"}]}, "fusion": {...}, "slowest_tensors": [...], "tensor_count", "modes"?, "warnings"}
// begin_us is on rank 0's clock. Figures are rounded to the nanosecond (the writer's resolution).
nlohmann::json summary_json(const Summary& s, size_t top);

}  // namespace quorum::trace
