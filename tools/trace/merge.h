// merge.h — one Chrome trace (JSON Object Format) from the per-rank files of a run, for Perfetto
// or chrome://tracing: one process per rank (pid = rank, named "rank R"), every ts moved onto
// rank 0's clock (ts + clock_offset_us), metadata kept, events sorted by ts.
#pragma once

#include <string>
#include <vector>

#include "tools/trace/trace_file.h"

namespace quorum::trace {

inline constexpr const char* kMergedFormat = "quorum-timeline-merged";

// `traces`: one run as load_run returns it, loaded with their raw events. Returns the document
// {"displayTimeUnit", "otherData": {"format": kMergedFormat, "version", "run_id", "size",
// "ranks", "clock", "sources": [...]}, "traceEvents": [...]} as text, one event per line.
// Metadata events come first (rank by rank), then the rest by ts; at equal ts the longer event
// first, so a span precedes the spans it contains. Events are rendered one at a time: the
// memory beyond the loaded traces is the text itself.
std::string merged_text(const std::vector<TraceFile>& traces);

}  // namespace quorum::trace
