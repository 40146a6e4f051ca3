// merge: one process per rank, every ts on rank 0's clock, metadata kept, sorted by ts, and the
// text form is valid JSON in the Chrome trace object format.
#include "tools/trace/merge.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/trace/fixtures.h"

namespace quorum::trace {
namespace {

using nlohmann::json;

TEST(Merge, OneProcessPerRankOnRankZerosClock) {
  std::vector<TraceFile> traces = testing::load_fixture_run("two/run.json");
  const json merged = json::parse(merged_text(traces));
  ASSERT_TRUE(merged.is_object());
  EXPECT_EQ(merged["otherData"]["format"], kMergedFormat);
  EXPECT_EQ(merged["otherData"]["run_id"], "fixture-2r");
  const json& events = merged["traceEvents"];
  ASSERT_TRUE(events.is_array());
  // Every input event, plus one process_sort_index per rank.
  EXPECT_EQ(events.size(), traces[0].events.size() + traces[1].events.size() + 2);

  std::map<int64_t, std::string> process_names;
  int thread_names = 0;
  bool metadata_done = false;
  double last_ts = -1e300;
  for (const json& e : events) {
    ASSERT_TRUE(e["pid"] == 0 || e["pid"] == 1) << e.dump();
    if (e["ph"] == "M") {
      EXPECT_FALSE(metadata_done) << "metadata after timed events";
      if (e["name"] == "process_name") {
        EXPECT_TRUE(process_names.emplace(e["pid"], e["args"]["name"]).second) << "twice";
      }
      thread_names += e["name"] == "thread_name";
      continue;
    }
    metadata_done = true;
    const double ts = e["ts"];
    EXPECT_LE(last_ts, ts) << e.dump();
    last_ts = ts;
  }
  EXPECT_EQ(process_names, (std::map<int64_t, std::string>{{0, "rank 0"}, {1, "rank 1"}}));
  EXPECT_EQ(thread_names, 12);

  // Rank 1's first negotiate is at 1500.5 on its clock, 1250 on rank 0's (offset -250.5);
  // rank 0's events are unchanged (offset 0).
  bool saw_rank1 = false, saw_rank0 = false;
  for (const json& e : events) {
    if (e["ph"] != "X" || e["cat"] != "negotiate" || e["args"]["plan"] != 1 ||
        e["name"] != "fc.weight") {
      continue;
    }
    if (e["pid"] == 1) {
      EXPECT_EQ(e["ts"], 1250.0);
      saw_rank1 = true;
    } else {
      EXPECT_EQ(e["ts"], 1000.0);
      saw_rank0 = true;
    }
    EXPECT_TRUE(e.contains("dur"));
  }
  EXPECT_TRUE(saw_rank0 && saw_rank1);
}

TEST(Merge, SpansBeforeTheSpansTheyContainAtEqualTs) {
  std::vector<TraceFile> traces = testing::load_fixture_run("three/run.json");
  const json merged = json::parse(merged_text(traces));
  // Rank 0 at ts 1000: the mode instant (dur 0) and two 400 µs negotiates; the longer first.
  std::vector<double> durs;
  for (const json& e : merged["traceEvents"]) {
    if (e["pid"] == 0 && e.contains("ts") && e["ts"] == 1000.0) durs.push_back(e.value("dur", 0.0));
  }
  EXPECT_EQ(durs, (std::vector<double>{400, 400, 0}));
}

}  // namespace
}  // namespace quorum::trace
