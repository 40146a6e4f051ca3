// trace_file.h — one rank's timeline file (docs/timeline-format.md, version 1), loaded and
// validated. A TraceFile is plain data owned by its caller; loading is thread-safe.
//
// Validation is strict about what the tools rely on (the otherData header, event shapes, the
// types of the args they read) and lenient about the rest: unknown phases, categories and args
// are kept for merge and ignored by the analysis. A file cut short by SIGKILL is still valid
// JSON by design and loads; its unfinished last step is reported, not rejected.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "quorum/types.h"

namespace quorum::trace {

inline constexpr std::string_view kTraceFormat = "quorum-timeline";
inline constexpr int kTraceVersion = 1;

// One traceEvents entry, with the args the tools read pulled out and type-checked.
struct Event {
  char ph = 0;  // 'X' complete, 'i' instant, 'M' metadata; anything else is kept, not analysed
  std::string name;
  std::string cat;
  int64_t tid = 0;
  bool has_ts = false;
  double ts = 0;   // µs on this rank's clock
  double dur = 0;  // µs; 0 unless ph == 'X'

  std::string tensor;                // args.tensor
  int64_t plan = -1;                 // args.plan
  int64_t bytes = -1;                // args.bytes
  int64_t last_rank = -1;            // args.last_rank (negotiate)
  int64_t step = -1;                 // args.step (step mark)
  std::vector<std::string> tensors;  // args.tensors when an array of names (collective)
  int64_t tensor_count = -1;         // args.tensors when a count (pack)
  std::string algorithm;             // args.algorithm
  std::string reason;                // args.reason (mode, timeline_dropped)
  int64_t dropped = -1;              // args.dropped (timeline_dropped)
  int64_t schedule = -1;             // args.schedule (agree)
  int64_t round = -1;                // args.round (agree)
  bool voted = false;                // args.voted == 1 (agree): the vote rode in the collective

  double end() const { return ts + dur; }
  bool timed() const { return has_ts && (ph == 'X' || ph == 'i' || ph == 'I'); }
};

// otherData of one file.
struct TraceHeader {
  int version = 0;
  std::string run_id;
  int64_t rank = -1;
  int64_t size = 0;
  std::string host;            // may be empty
  int64_t pid = -1;            // -1 when absent
  double clock_offset_us = 0;  // ts + clock_offset_us is rank 0's clock
  std::string clock;
};

struct TraceFile {
  std::string path;
  TraceHeader header;
  std::vector<Event> events;  // file order; events[i] is raw_events[i]
  // The traceEvents array as read (merge copies from it); null unless loaded with kKeepRaw.
  nlohmann::json raw_events;
};

// Whether to keep raw_events. Only merge needs them; dropping them halves the memory.
enum class RawEvents { kDrop, kKeep };

// Reads and validates `path`. On error returns kInvalidArgument with a message that begins with
// the path: "trace.rank1.json: not valid JSON: ...", "...: not a quorum trace: ...",
// "...: traceEvents[12]: \"dur\" is string, expected a number". `*out` is unspecified then.
Status load_trace_file(const std::string& path, TraceFile* out, RawEvents raw = RawEvents::kKeep);

// The same on text already read; `path` only names the source in messages.
Status parse_trace(const std::string& path, std::string_view text, TraceFile* out,
                   RawEvents raw = RawEvents::kKeep);

}  // namespace quorum::trace
