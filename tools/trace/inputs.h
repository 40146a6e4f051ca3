// inputs.h — from command-line arguments to the validated per-rank files of one run.
// Free functions; they read the file system and nothing else.
#pragma once

#include <string>
#include <vector>

#include "quorum/types.h"
#include "tools/trace/trace_file.h"

namespace quorum::trace {

// The per-rank files the runtime writes for `prefix` (QUORUM_TIMELINE=prefix): "trace.json" →
// trace.rank<R>.json, "trace" → trace.rank<R>.json, in rank order. Only files that exist.
std::vector<std::string> rank_files_for(const std::string& prefix);

// Each argument is a prefix when rank files exist for it (see rank_files_for), else a file.
// Error (kInvalidArgument, naming the argument) when neither exists.
Status expand_inputs(const std::vector<std::string>& args, std::vector<std::string>* paths);

// Expands, loads and validates every file, then checks they are one run: the same run_id and
// size, no rank twice. `*traces` is sorted by rank. Errors name the offending file (and, for a
// conflict, the file it conflicts with). A subset of the ranks is fine.
Status load_run(const std::vector<std::string>& args, std::vector<TraceFile>* traces,
                RawEvents raw = RawEvents::kKeep);

// The cross-file checks of load_run on files already loaded (any order).
Status check_one_run(const std::vector<TraceFile>& traces);

}  // namespace quorum::trace
