// Loading: the fixtures parse with the fields the format defines; every kind of bad input is an
// error that names the file and the problem; a killed run's file still loads.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/trace/fixtures.h"
#include "tools/trace/inputs.h"
#include "tools/trace/trace_file.h"

namespace quorum::trace {
namespace {

using testing::fixture;

TEST(Load, HeaderAndEventsOfAFixture) {
  TraceFile t;
  Status s = load_trace_file(fixture("two/run.rank1.json"), &t);
  ASSERT_TRUE(s.is_ok()) << s.message();
  EXPECT_EQ(t.header.version, 1);
  EXPECT_EQ(t.header.run_id, "fixture-2r");
  EXPECT_EQ(t.header.rank, 1);
  EXPECT_EQ(t.header.size, 2);
  EXPECT_EQ(t.header.host, "nodeB");
  EXPECT_EQ(t.header.pid, 5200);
  EXPECT_EQ(t.header.clock_offset_us, -250.5);
  ASSERT_EQ(t.events.size(), t.raw_events.size());
  ASSERT_EQ(t.events.size(), 29u);

  int metadata = 0, marks = 0;
  for (const Event& e : t.events) {
    metadata += e.ph == 'M';
    if (e.ph == 'i' && e.cat == "step") {
      ++marks;
      EXPECT_EQ(e.step, marks);
    }
    if (e.cat == "collective") {
      EXPECT_EQ(e.name, "allreduce");
      EXPECT_EQ(e.algorithm, "ring");
      EXPECT_EQ(e.bytes, 4160);
      EXPECT_EQ(e.tensors, (std::vector<std::string>{"fc.weight", "fc.bias"}));
    }
    if (e.cat == "pack") {
      EXPECT_EQ(e.tensor_count, 2);
    }
    if (e.cat == "negotiate") {
      EXPECT_FALSE(e.tensor.empty());
      EXPECT_GE(e.last_rank, 0);
      EXPECT_GE(e.plan, 1);
    }
  }
  EXPECT_EQ(metadata, 7);
  EXPECT_EQ(marks, 2);
}

TEST(Load, PrefixExpandsToRankFilesInRankOrder) {
  std::vector<std::string> paths;
  ASSERT_TRUE(expand_inputs({fixture("three/run.json")}, &paths).is_ok());
  EXPECT_EQ(paths, (std::vector<std::string>{fixture("three/run.rank0.json"),
                                             fixture("three/run.rank1.json"),
                                             fixture("three/run.rank2.json")}));
  // Without the extension, as QUORUM_TIMELINE=run would write them.
  ASSERT_TRUE(expand_inputs({fixture("two/run")}, &paths).is_ok());
  EXPECT_EQ(paths.size(), 2u);
  // A file that exists is taken as is.
  ASSERT_TRUE(expand_inputs({fixture("two/run.rank1.json")}, &paths).is_ok());
  EXPECT_EQ(paths, std::vector<std::string>{fixture("two/run.rank1.json")});
}

TEST(Load, KilledRunStillLoads) {
  // three/run.rank2.json ends in the middle of step 2 (no final mark): valid JSON by design.
  std::vector<TraceFile> traces = testing::load_fixture_run("three/run.json");
  ASSERT_EQ(traces.size(), 3u);
  EXPECT_EQ(traces[2].header.rank, 2);
}

struct BadCase {
  std::vector<std::string> files;  // relative to the fixtures
  std::string named;               // the file the message must begin with
  std::string problem;             // a phrase of the message
};

class BadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadInput, IsAnErrorNamingTheFile) {
  const BadCase& c = GetParam();
  std::vector<std::string> args;
  for (const std::string& f : c.files) args.push_back(fixture(f));
  std::vector<TraceFile> traces;
  Status s = load_run(args, &traces);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind(fixture(c.named) + ": ", 0), 0u) << s.message();
  EXPECT_NE(s.message().find(c.problem), std::string::npos) << s.message();
}

INSTANTIATE_TEST_SUITE_P(
    Trace, BadInput,
    ::testing::Values(
        BadCase{{"missing.rank0.json"}, "missing.rank0.json", "no such file"},
        BadCase{{"missing.json"}, "missing.json", "no missing.rank<R>.json files"},
        BadCase{{"bad/truncated.rank0.json"}, "bad/truncated.rank0.json", "not valid JSON"},
        BadCase{{"bad/not_quorum.json"}, "bad/not_quorum.json", "not a quorum trace"},
        BadCase{{"bad/wrong_format.json"},
                "bad/wrong_format.json",
                "otherData.format is \"horovod-timeline\""},
        BadCase{{"bad/array.json"}, "bad/array.json", "not a quorum trace"},
        BadCase{{"bad/bad_event.json"}, "bad/bad_event.json", "traceEvents[1]: missing \"dur\""},
        BadCase{{"two/run.rank0.json", "bad/other_run.rank1.json"},
                "bad/other_run.rank1.json",
                "different runs"},
        BadCase{{"two/run.rank0.json", "bad/dup.rank0.json"},
                "bad/dup.rank0.json",
                "rank 0 is also in " + fixture("two/run.rank0.json")},
        BadCase{{"two/run.rank0.json", "two/run.rank0.json"}, "two/run.rank0.json", "given twice"},
        BadCase{{"two/run.json", "three/run.json"}, "three/run.rank0.json", "different runs"}));

TEST(Load, ParseErrorsOnText) {
  TraceFile t;
  Status s = parse_trace("x.json", "", &t);
  EXPECT_NE(s.message().find("x.json: not valid JSON (truncated?)"), std::string::npos)
      << s.message();
  s = parse_trace("x.json",
                  R"({"otherData":{"format":"quorum-timeline","version":2,"run_id":"r","rank":0,)"
                  R"("size":1,"clock_offset_us":0},"traceEvents":[]})",
                  &t);
  EXPECT_NE(s.message().find("unsupported timeline version 2"), std::string::npos) << s.message();
  s = parse_trace("x.json",
                  R"({"otherData":{"format":"quorum-timeline","version":1,"run_id":"r","rank":3,)"
                  R"("size":2,"clock_offset_us":0},"traceEvents":[]})",
                  &t);
  EXPECT_NE(s.message().find("rank 3 is outside"), std::string::npos) << s.message();
  s = parse_trace("x.json",
                  R"({"otherData":{"format":"quorum-timeline","version":1,"run_id":"r","rank":0,)"
                  R"("size":1,"clock_offset_us":0},"traceEvents":[{"ph":"X","ts":1,"dur":"2"}]})",
                  &t);
  EXPECT_NE(s.message().find("traceEvents[0]: \"dur\" is string"), std::string::npos)
      << s.message();
  s = parse_trace("x.json", R"({"otherData":{"format":"quorum-timeline-merged"},"traceEvents":[]})",
                  &t);
  EXPECT_NE(s.message().find("pass the per-rank files"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace quorum::trace
