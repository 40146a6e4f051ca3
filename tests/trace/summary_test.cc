// The per-step attribution and the summary figures, against numbers worked out by hand from the
// fixtures (the interval arithmetic is spelled out in the comments). All fixture times are
// multiples of 0.25 µs, so every figure is exact in binary floating point.
#include "tools/trace/summary.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/trace/fixtures.h"
#include "tools/trace/breakdown.h"
#include "tools/trace/report.h"

namespace quorum::trace {
namespace {

using testing::load_fixture_run;

// step, compute, exposed, collective, straggler_wait, negotiation, queue, other (µs)
Breakdown B(double step, double compute, double exposed, double collective, double straggler,
            double negotiation, double queue, double other) {
  return {step, compute, exposed, collective, straggler, negotiation, queue, other};
}

void expect_breakdown(const Breakdown& got, const Breakdown& want, const std::string& where) {
  SCOPED_TRACE(where);
  for (const BreakdownField& f : kBreakdownFields) {
    EXPECT_DOUBLE_EQ(got.*f.member, want.*f.member) << f.key;
  }
}

void expect_parts_add_up(const Breakdown& b) {
  const double parts =
      b.compute + b.collective + b.straggler_wait + b.negotiation + b.queue + b.other;
  EXPECT_NEAR(parts, b.step, 0.05 * b.step);  // the brief's tolerance
  EXPECT_DOUBLE_EQ(parts, b.step);            // what the doc promises
  EXPECT_DOUBLE_EQ(b.exposed, b.collective + b.straggler_wait + b.negotiation + b.queue + b.other);
}

// two/ rank 0, step 1 = [1000, 2000):
//   blocked (waits) [1200,1630) u [1600,1640) = [1200,1640)            440
//   collective lane [1350,1620)                                         270
//   straggler (negotiate, last_rank 1) [1000,1300) -> [1200,1300)       100
//   queue [1300,1350)                                                    50
//   other [1620,1640) (callbacks)                                        20
// step 2 = [2000, 3000): blocked [2150,2430) 280 = collective [2220,2420) 200 + negotiation
//   (last_rank 0 = itself) [2150,2200) 50 + queue [2200,2220) 20 + other [2420,2430) 10.
// two/ rank 1, step 1 = [1500.5 (its first event), 2250.5): blocked [1520.5,1890.5) 370 =
//   collective 270 + negotiation [1520.5,1550.5) 30 + queue 50 + other [1870.5,1890.5) 20.
// step 2 = [2250.5, 3250.5): blocked [2350.5,2450.5) u [2400.5,2675.5) = 325 = collective
//   [2470.5,2670.5) 200 + straggler (last_rank 0) [2350.5,2450.5) 100 + queue 20 + other 5.
TEST(Breakdown, TwoRankFixturePerRankAndStep) {
  std::vector<TraceFile> traces = load_fixture_run("two/run.json");
  ASSERT_EQ(traces.size(), 2u);
  RankTimeline r0 = analyze_rank(traces[0]);
  RankTimeline r1 = analyze_rank(traces[1]);
  ASSERT_EQ(r0.steps.size(), 2u);
  ASSERT_EQ(r1.steps.size(), 2u);
  expect_breakdown(r0.steps[0].time, B(1000, 560, 440, 270, 100, 0, 50, 20), "rank 0 step 1");
  expect_breakdown(r0.steps[1].time, B(1000, 720, 280, 200, 0, 50, 20, 10), "rank 0 step 2");
  expect_breakdown(r1.steps[0].time, B(750, 380, 370, 270, 0, 30, 50, 20), "rank 1 step 1");
  expect_breakdown(r1.steps[1].time, B(1000, 675, 325, 200, 100, 0, 20, 5), "rank 1 step 2");
  for (const RankTimeline* r : {&r0, &r1}) {
    for (const RankStep& s : r->steps) expect_parts_add_up(s.time);
    EXPECT_EQ(r->trailing_us, 0);
  }
  EXPECT_EQ(r0.steps[0].step, 1);
  EXPECT_EQ(r0.steps[1].step, 2);
  EXPECT_EQ(r1.steps[0].begin_us, 1500.5);

  ASSERT_EQ(r0.steps[0].stragglers.size(), 1u);
  EXPECT_EQ(r0.steps[0].stragglers[0].rank, 1);
  EXPECT_EQ(r0.steps[0].stragglers[0].events, 2);
  EXPECT_EQ(r0.steps[0].stragglers[0].blocked_us, 100);
  EXPECT_TRUE(r0.steps[1].stragglers.empty());
  ASSERT_EQ(r1.steps[1].stragglers.size(), 1u);
  EXPECT_EQ(r1.steps[1].stragglers[0].rank, 0);
}

TEST(Summary, TwoRankFixtureAcrossRanks) {
  Summary s = summarize(load_fixture_run("two/run.json"));
  EXPECT_EQ(s.run_id, "fixture-2r");
  ASSERT_EQ(s.steps.size(), 2u);
  expect_breakdown(s.steps[0].max, B(1000, 560, 440, 270, 100, 30, 50, 20), "step 1 max");
  expect_breakdown(s.steps[0].mean, B(875, 470, 405, 270, 50, 15, 50, 20), "step 1 mean");
  expect_breakdown(s.steps[1].max, B(1000, 720, 325, 200, 100, 50, 20, 10), "step 2 max");
  expect_breakdown(s.steps[1].mean, B(1000, 697.5, 302.5, 200, 50, 25, 20, 7.5), "step 2 mean");
  EXPECT_EQ(s.steps[0].stragglers, std::vector<int64_t>{1});
  EXPECT_EQ(s.steps[1].stragglers, std::vector<int64_t>{0});

  ASSERT_EQ(s.totals.size(), 2u);
  expect_breakdown(s.totals[0].time, B(2000, 1280, 720, 470, 100, 50, 70, 30), "rank 0 total");
  expect_breakdown(s.totals[1].time, B(1750, 1055, 695, 470, 100, 30, 70, 25), "rank 1 total");
  expect_breakdown(s.total_max, B(2000, 1280, 720, 470, 100, 50, 70, 30), "overall max");
  expect_breakdown(s.total_mean, B(1875, 1167.5, 707.5, 470, 100, 40, 70, 27.5), "overall mean");
  EXPECT_EQ(s.straggler_steps, (std::map<int64_t, int64_t>{{0, 1}, {1, 1}}));

  // Two plans of [fc.weight, fc.bias], 4160 bytes each.
  EXPECT_EQ(s.fusion.plans, 2);
  EXPECT_EQ(s.fusion.tensors, 4);
  EXPECT_EQ(s.fusion.fused_plans, 2);
  EXPECT_DOUBLE_EQ(s.fusion.tensors_per_plan_mean, 2);
  EXPECT_EQ(s.fusion.bytes_total, 8320);
  EXPECT_EQ(s.fusion.bytes_per_plan_max, 4160);
  EXPECT_EQ(s.fusion.ops.at("allreduce"), 2);
  EXPECT_EQ(s.fusion.algorithms.at("ring"), 2);

  // fc.weight: rank 0 plan 1 300+50+270, plan 2 100+20+200; rank 1 plan 1 50+50+270,
  // plan 2 150+20+200 -> 620, 320, 370, 370: mean 420, max 620. fc.bias: 570, 320, 370, 370.
  ASSERT_EQ(s.tensors.size(), 2u);
  EXPECT_EQ(s.tensors[0].name, "fc.weight");
  EXPECT_EQ(s.tensors[0].occurrences, 4);
  EXPECT_DOUBLE_EQ(s.tensors[0].mean_us, 420);
  EXPECT_DOUBLE_EQ(s.tensors[0].max_us, 620);
  EXPECT_DOUBLE_EQ(s.tensors[0].collective_mean_us, 235);
  EXPECT_EQ(s.tensors[1].name, "fc.bias");
  EXPECT_DOUBLE_EQ(s.tensors[1].mean_us, 407.5);

  EXPECT_FALSE(s.has_modes);
  EXPECT_TRUE(s.warnings.empty());
}

// three/ (worked like two/ above): rank 0 waited for rank 2 in step 1 (and for rank 1's `head` in
// step 2, a straggler wait that covers its own negotiation of `emb`: the earlier category wins);
// rank 1's step 2 has a blocked instant covered by both its own negotiation and a queue event:
// negotiation wins.
TEST(Summary, ThreeRankFixture) {
  Summary s = summarize(load_fixture_run("three/run.json"));
  ASSERT_EQ(s.steps.size(), 2u);
  ASSERT_EQ(s.steps[0].ranks.size(), 3u);
  expect_breakdown(s.steps[0].ranks[0].time, B(800, 344, 456, 140, 300, 0, 10, 6), "r0 s1");
  expect_breakdown(s.steps[0].ranks[1].time, B(800, 590, 210, 140, 50, 0, 10, 10), "r1 s1");
  expect_breakdown(s.steps[0].ranks[2].time, B(800, 639, 161, 140, 0, 5, 10, 6), "r2 s1");
  EXPECT_EQ(s.steps[0].stragglers, std::vector<int64_t>{2});
  // Rank 2 also waited for rank 0 (opt.state), but while computing: listed on rank 2 with no
  // blocked time, and rank 0 is not a straggler of step 1.
  ASSERT_EQ(s.steps[0].ranks[2].stragglers.size(), 1u);
  EXPECT_EQ(s.steps[0].ranks[2].stragglers[0].rank, 0);
  EXPECT_EQ(s.steps[0].ranks[2].stragglers[0].events, 1);
  EXPECT_EQ(s.steps[0].ranks[2].stragglers[0].blocked_us, 0);
  // Rank 2 was killed during step 2: only ranks 0 and 1 finished it.
  ASSERT_EQ(s.steps[1].ranks.size(), 2u);
  expect_breakdown(s.steps[1].ranks[0].time, B(800, 613, 187, 130, 50, 0, 5, 2), "r0 s2");
  expect_breakdown(s.steps[1].ranks[1].time, B(800, 700, 100, 80, 10, 10, 0, 0), "r1 s2");
  EXPECT_EQ(s.steps[1].stragglers, (std::vector<int64_t>{0, 1}));
  for (const StepSummary& step : s.steps) {
    for (const RankStep& rs : step.ranks) expect_parts_add_up(rs.time);
  }
  EXPECT_DOUBLE_EQ(s.steps[0].mean.compute, (344.0 + 590 + 639) / 3);
  EXPECT_EQ(s.totals[2].steps, 1);

  // Modes: sync from each rank's first event, bounded from its step-1 mark.
  ASSERT_TRUE(s.has_modes);
  EXPECT_DOUBLE_EQ(s.mode_max_us.at("sync"), 800);
  EXPECT_DOUBLE_EQ(s.mode_mean_us.at("sync"), 800);
  EXPECT_DOUBLE_EQ(s.mode_max_us.at("bounded"), 800);
  EXPECT_DOUBLE_EQ(s.mode_mean_us.at("bounded"), 1600.0 / 3);
  EXPECT_EQ(s.mode_mean_us.count(kInitialMode), 0u);

  // Plans: 1 allreduce [emb, head] 3072 B, 2 allreduce [emb] 1024 B, 3 broadcast [head] 2048 B.
  EXPECT_EQ(s.fusion.plans, 3);
  EXPECT_EQ(s.fusion.tensors, 4);
  EXPECT_EQ(s.fusion.fused_plans, 1);
  EXPECT_EQ(s.fusion.bytes_total, 6144);
  EXPECT_EQ(s.fusion.bytes_per_plan_min, 1024);
  EXPECT_EQ(s.fusion.bytes_per_plan_max, 3072);
  EXPECT_EQ(s.fusion.ops.at("broadcast"), 1);
  EXPECT_EQ(s.fusion.algorithms.at("tree"), 1);

  // Rank 0 dropped events; rank 2 stopped 150 µs into step 2.
  ASSERT_EQ(s.warnings.size(), 2u);
  EXPECT_NE(s.warnings[0].find("3 events were dropped (queue full)"), std::string::npos);
  EXPECT_NE(s.warnings[1].find("rank 2"), std::string::npos);
  EXPECT_NE(s.warnings[1].find("0.150 ms after the last step mark"), std::string::npos);
}

// A complete span and a step mark, for the hand-built agreement cases below.
Event span_event(const char* cat, double ts, double dur) {
  Event e;
  e.ph = 'X';
  e.cat = cat;
  e.name = cat;
  e.has_ts = true;
  e.ts = ts;
  e.dur = dur;
  return e;
}

Event agree_event(double ts, double dur, bool voted) {
  Event e = span_event("agree", ts, dur);
  e.schedule = 1;
  e.round = 0;
  e.voted = voted;
  return e;
}

Event step_mark(double ts, int64_t step) {
  Event mark;
  mark.ph = 'i';
  mark.cat = "step";
  mark.name = "step";
  mark.has_ts = true;
  mark.ts = ts;
  mark.step = step;
  return mark;
}

// Fast-path agreements: the ranks' `agree` events of one (schedule, round) are matched across
// files; the rank that waited least came last, and the others' wait in it is straggler wait for
// it. Rank 0 step [0,200): blocked [0,100); agree [10,90) -> straggler 80 (rank 1), other 20.
// Rank 1: blocked [80,100); its agree [80,90) is the shortest, so it came last itself: 10 of
// negotiation, other 10. Without the other rank's file the same wait is negotiation.
TEST(Breakdown, FastPathAgreementsNameWhoCameLast) {
  auto event = span_event;
  auto agree = [](double ts, double dur) { return agree_event(ts, dur, false); };
  const Event mark = step_mark(200, 1);
  Event start = event("queue", 0, 0);  // opens the step at 0 without covering anything
  std::vector<TraceFile> traces(2);
  for (int r = 0; r < 2; ++r) {
    traces[r].header.rank = r;
    traces[r].header.size = 2;
  }
  traces[0].events = {start, event("wait", 0, 100), agree(10, 80), mark};
  traces[1].events = {start, event("wait", 80, 20), agree(80, 10), mark};
  const AgreementLast last = last_at_agreements(traces);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last.at({1, 0}).rank, 1);
  RankTimeline r0 = analyze_rank(traces[0], last);
  RankTimeline r1 = analyze_rank(traces[1], last);
  ASSERT_EQ(r0.steps.size(), 1u);
  ASSERT_EQ(r1.steps.size(), 1u);
  expect_breakdown(r0.steps[0].time, B(200, 100, 100, 0, 80, 0, 0, 20), "rank 0");
  expect_breakdown(r1.steps[0].time, B(200, 180, 20, 0, 0, 10, 0, 10), "rank 1");
  ASSERT_EQ(r0.steps[0].stragglers.size(), 1u);
  EXPECT_EQ(r0.steps[0].stragglers[0].rank, 1);
  EXPECT_EQ(r0.steps[0].stragglers[0].blocked_us, 80);
  // Rank 1's file alone: nobody to compare with, so no agreement is judged.
  EXPECT_TRUE(last_at_agreements({traces[1]}).empty());
  expect_breakdown(analyze_rank(traces[0]).steps[0].time, B(200, 100, 100, 0, 0, 80, 0, 20),
                   "rank 0 alone");
}

// A voted agreement spans the small entry's own collective. Rank 0 step [0,200): blocked
// [0,100); voted agree [10,90) with its collective [60,90) inside; rank 1's agree [60,90) is 30
// long, so rank 0 waited 80 - 30 = 50 for it: straggler [10,60), collective [60,90), other 20.
// Rank 1 came last: its [60,90) is collective time only, other 20 ([50,60) and [90,100)).
TEST(Breakdown, VotedAgreementsSplitStragglerWaitFromTheCollective) {
  auto event = span_event;
  auto agree = [](double ts, double dur) { return agree_event(ts, dur, true); };
  const Event mark = step_mark(200, 1);
  Event start = event("queue", 0, 0);
  std::vector<TraceFile> traces(2);
  for (int r = 0; r < 2; ++r) {
    traces[r].header.rank = r;
    traces[r].header.size = 2;
  }
  traces[0].events = {start, event("wait", 0, 100), agree(10, 80), event("collective", 60, 30),
                      mark};
  traces[1].events = {start, event("wait", 50, 50), agree(60, 30), event("collective", 60, 30),
                      mark};
  const AgreementLast last = last_at_agreements(traces);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last.at({1, 0}), (CameLast{1, 30}));
  RankTimeline r0 = analyze_rank(traces[0], last);
  RankTimeline r1 = analyze_rank(traces[1], last);
  ASSERT_EQ(r0.steps.size(), 1u);
  ASSERT_EQ(r1.steps.size(), 1u);
  expect_breakdown(r0.steps[0].time, B(200, 100, 100, 30, 50, 0, 0, 20), "rank 0");
  expect_breakdown(r1.steps[0].time, B(200, 150, 50, 30, 0, 0, 0, 20), "rank 1");
  ASSERT_EQ(r0.steps[0].stragglers.size(), 1u);
  EXPECT_EQ(r0.steps[0].stragglers[0].rank, 1);
  EXPECT_EQ(r0.steps[0].stragglers[0].blocked_us, 50);
}

TEST(Summary, PartialRunWarnsAboutMissingRanks) {
  std::vector<TraceFile> traces;
  ASSERT_TRUE(load_run({testing::fixture("three/run.rank1.json")}, &traces).is_ok());
  Summary s = summarize(traces);
  EXPECT_EQ(s.ranks, std::vector<int64_t>{1});
  ASSERT_FALSE(s.warnings.empty());
  EXPECT_NE(s.warnings.back().find("missing rank(s) 0,2"), std::string::npos);
}

TEST(Report, JsonCarriesTheSameFigures) {
  Summary s = summarize(load_fixture_run("two/run.json"));
  nlohmann::json j = summary_json(s, 1);
  EXPECT_EQ(j["run_id"], "fixture-2r");
  EXPECT_EQ(j["units"], "us");
  const nlohmann::json& step1 = j["steps"][0];
  EXPECT_EQ(step1["step"], 1);
  EXPECT_EQ(step1["ranks"][0]["straggler_wait_us"], 100.0);
  EXPECT_EQ(step1["ranks"][1]["begin_us"], 1250.0);  // on rank 0's clock
  EXPECT_EQ(step1["mean"]["step_us"], 875.0);
  EXPECT_EQ(step1["stragglers"], nlohmann::json::array({1}));
  EXPECT_EQ(j["overall"]["mean"]["compute_us"], 1167.5);
  EXPECT_EQ(j["fusion"]["plans"], 2);
  ASSERT_EQ(j["slowest_tensors"].size(), 1u);
  EXPECT_EQ(j["slowest_tensors"][0]["tensor"], "fc.weight");
  EXPECT_EQ(j["tensor_count"], 2);
  EXPECT_FALSE(j.contains("modes"));
}

TEST(Report, TextHasATablePerStepAndOverall) {
  const std::string text = summary_text(summarize(load_fixture_run("two/run.json")), 10);
  EXPECT_NE(text.find("run fixture-2r: 2 of 2 ranks, 2 steps"), std::string::npos) << text;
  EXPECT_NE(text.find("\nstep 1\n"), std::string::npos);
  EXPECT_NE(text.find("\nstep 2\n"), std::string::npos);
  EXPECT_NE(text.find("overall"), std::string::npos);
  // Rank 0's step 1 row, in ms.
  EXPECT_NE(text.find("  0              1.000       0.560       0.440       0.270       0.100"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("stragglers: rank 1 (rank 0 blocked 0.100 ms)"), std::string::npos);
  EXPECT_NE(text.find("fusion: 2 plans, 4 tensors"), std::string::npos);
  EXPECT_NE(text.find("fc.weight"), std::string::npos);
}

}  // namespace
}  // namespace quorum::trace
