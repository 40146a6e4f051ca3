#include "tools/trace/merge.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

namespace quorum::trace {
namespace {

using nlohmann::json;

// One output event: a file's event (file, index) or one synthesised (file, kNone).
struct Slot {
  bool metadata;
  double ts;  // rank 0's clock
  double dur;
  size_t file;
  size_t index;
};
constexpr size_t kSortIndex = static_cast<size_t>(-1);    // process_sort_index, synthesised
constexpr size_t kProcessName = static_cast<size_t>(-2);  // process_name, when a file has none

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json process_meta(int64_t rank, const char* name, json args) {
  return {{"ph", "M"}, {"name", name}, {"pid", rank}, {"tid", 0}, {"args", std::move(args)}};
}

std::string render(const TraceFile& t, size_t index) {
  const int64_t rank = t.header.rank;
  if (index == kSortIndex)
    return dump(process_meta(rank, "process_sort_index", {{"sort_index", rank}}));
  const std::string label = "rank " + std::to_string(rank);
  if (index == kProcessName) return dump(process_meta(rank, "process_name", {{"name", label}}));
  const Event& e = t.events[index];
  json ev = t.raw_events[index];
  ev["pid"] = rank;
  if (e.has_ts && t.header.clock_offset_us != 0) ev["ts"] = e.ts + t.header.clock_offset_us;
  if (e.ph == 'M' && e.name == "process_name") ev["args"]["name"] = label;
  return dump(ev);
}

}  // namespace

std::string merged_text(const std::vector<TraceFile>& traces) {
  std::vector<Slot> slots;
  json sources = json::array();
  json ranks = json::array();
  for (size_t f = 0; f < traces.size(); ++f) {
    const TraceFile& t = traces[f];
    if (!t.raw_events.is_array() || t.raw_events.size() != t.events.size()) {
      std::fprintf(stderr, "quorum-trace: merged_text: %s was loaded without its raw events\n",
                   t.path.c_str());
      std::abort();
    }
    const double offset = t.header.clock_offset_us;
    ranks.push_back(t.header.rank);
    sources.push_back({{"rank", t.header.rank},
                       {"file", t.path},
                       {"host", t.header.host},
                       {"pid", t.header.pid},
                       {"clock_offset_us", offset}});
    bool named = false;
    for (size_t i = 0; i < t.events.size(); ++i) {
      const Event& e = t.events[i];
      if (e.ph == 'M' && e.name == "process_name") {
        if (named) continue;  // one name per process
        named = true;
      }
      slots.push_back({e.ph == 'M',
                       e.has_ts ? e.ts + offset : -std::numeric_limits<double>::infinity(), e.dur,
                       f, i});
    }
    if (!named) slots.push_back({true, 0, 0, f, kProcessName});
    slots.push_back({true, 0, 0, f, kSortIndex});
  }
  std::stable_sort(slots.begin(), slots.end(), [](const Slot& a, const Slot& b) {
    if (a.metadata != b.metadata) return a.metadata;
    if (a.metadata) return false;  // file order, rank by rank
    if (a.ts != b.ts) return a.ts < b.ts;
    return a.dur > b.dur;
  });

  const TraceFile* first = traces.empty() ? nullptr : &traces.front();
  const json other = {{"format", kMergedFormat},
                      {"version", kTraceVersion},
                      {"run_id", first ? first->header.run_id : ""},
                      {"size", first ? first->header.size : 0},
                      {"ranks", std::move(ranks)},
                      {"clock", "rank 0"},
                      {"sources", std::move(sources)}};
  std::string out =
      "{\"displayTimeUnit\":\"ms\",\n\"otherData\":" + dump(other) + ",\n\"traceEvents\":[";
  for (size_t i = 0; i < slots.size(); ++i) {
    out += i ? ",\n" : "\n";
    out += render(traces[slots[i].file], slots[i].index);
  }
  return out + "\n]}\n";
}

}  // namespace quorum::trace
