// breakdown.h — the per-rank, per-step attribution of docs/timeline-format.md ("Per-step
// breakdown"): where each step's blocked time went, on one rank's own clock. Pure functions of
// one TraceFile; results are plain data.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tools/trace/trace_file.h"

namespace quorum::trace {

// Microseconds. exposed = collective + straggler_wait + negotiation + queue + other, and
// compute + exposed = step, so the six parts add up to the step.
struct Breakdown {
  double step = 0;
  double compute = 0;
  double exposed = 0;  // the union of `wait` events: the framework was blocked
  double collective = 0;
  double straggler_wait = 0;
  double negotiation = 0;
  double queue = 0;
  double other = 0;

  Breakdown& operator+=(const Breakdown& o);
};

// The fields by name, for tables, JSON and plots: key (JSON), label (table header), member.
struct BreakdownField {
  const char* key;
  const char* label;
  double Breakdown::*member;
};
inline constexpr std::array<BreakdownField, 8> kBreakdownFields = {{
    {"step_us", "step", &Breakdown::step},
    {"compute_us", "compute", &Breakdown::compute},
    {"exposed_us", "exposed", &Breakdown::exposed},
    {"collective_us", "collective", &Breakdown::collective},
    {"straggler_wait_us", "straggler", &Breakdown::straggler_wait},
    {"negotiation_us", "negotiation", &Breakdown::negotiation},
    {"queue_us", "queue", &Breakdown::queue},
    {"other_us", "other", &Breakdown::other},
}};
// The six parts of a step, bottom to top in plots: compute and the five kinds of blocked time.
inline constexpr std::array<size_t, 6> kStepParts = {1, 3, 4, 5, 6, 7};

// Another rank this one waited for in a step (a negotiate event naming it as last_rank, or an
// agreement it came to last).
struct StragglerWait {
  int64_t rank = -1;
  int64_t events = 0;     // negotiate events overlapping the step that name it
  double blocked_us = 0;  // blocked time covered by those waits and not by a collective
};

struct RankStep {
  int64_t rank = -1;
  int64_t step = 0;     // the number of the step mark that ends it
  double begin_us = 0;  // this rank's clock
  double end_us = 0;
  double offset_us = 0;  // begin_us + offset_us is rank 0's clock
  Breakdown time;
  std::vector<StragglerWait> stragglers;       // by rank
  std::map<std::string, double> mode_time_us;  // empty when the file has no mode events
};

struct RankTimeline {
  int64_t rank = -1;
  std::vector<RankStep> steps;  // in time order
  bool has_modes = false;
  int64_t mode_switches = 0;
  // Time from the last step mark to the last event: an unfinished step (e.g. a killed run),
  // in no step. With no step marks at all, the whole span of the file.
  double trailing_us = 0;
};

// Before a rank's first `mode` event its mode is unknown; that time is reported under this name.
inline constexpr const char* kInitialMode = "initial";

// Who came last to each fast-path agreement (an `agree` event): (schedule, round) -> the rank
// that waited least in it, the others having waited for it, and how long that was. Only
// agreements found in every rank's file are judged.
struct CameLast {
  int64_t rank = -1;
  double least_us = 0;
  bool operator==(const CameLast&) const = default;
};
using AgreementLast = std::map<std::pair<int64_t, int64_t>, CameLast>;
AgreementLast last_at_agreements(const std::vector<TraceFile>& traces);

// `agreements` (from last_at_agreements over all the run's files) turns a rank's wait in an
// agreement into straggler wait for the rank that came last; without it that wait counts as
// negotiation. A voted agreement (the vote inside a small entry's own collective) spans that
// collective: the part by which it outlasted the last rank's is straggler wait, before the
// collective's own time; the rest is the collective's.
RankTimeline analyze_rank(const TraceFile& trace, const AgreementLast& agreements = {});

}  // namespace quorum::trace
