// The steady-state fast path (QUORUM_FAST_PATH): a repeating step is taken off rank 0's critical
// path, and every deviation goes back through the coordinator without a wrong result, a lost
// handle or a hang. Run with the fast path on and off (FAST_PATH_EXPECTED says which): the same
// cases must give the same results either way, and the counters say which path ran them.
//
// The data are small integers times powers of two, so a sum is exact in any order: "the result
// is right" then means bit-identical to the coordinator path and to any other reduction order.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "quorum/quorum.h"
#include "tests/mpi/mpi_main.h"

namespace quorum {
namespace {

bool fast_expected() {
  const char* v = std::getenv("FAST_PATH_EXPECTED");
  return v && std::string(v) == "1";
}

// Element i of tensor t at step s on rank r: exactly representable, and so is any sum of them.
float value(int r, int s, int t, size_t i) {
  return static_cast<float>((r + 1) * static_cast<int>(i % 97) + s * 3 + t) * 0.25f;
}

float summed(int s, int t, size_t i) {
  float sum = 0;
  for (int r = 0; r < size(); ++r) sum += value(r, s, t, i);
  return sum;
}

// One training step's gradients: sizes from a fused few bytes to one larger than
// QUORUM_FUSION_MAX_TENSOR (its own plan).
struct Step {
  std::vector<int64_t> sizes = {3, 257, 1000, 4096, 17, 70000};
  std::vector<std::vector<float>> data;
  std::string prefix = "g.";

  // Enqueues every tensor (in `order`, or 0..n-1) and waits for all; returns each one's status.
  std::vector<Status> run(int s, std::vector<int> order = {}) {
    if (order.empty()) {
      for (size_t t = 0; t < sizes.size(); ++t) order.push_back(static_cast<int>(t));
    }
    data.assign(sizes.size(), {});
    std::vector<Handle> hs(sizes.size());
    for (int t : order) {
      data[t].resize(static_cast<size_t>(sizes[t]));
      for (size_t i = 0; i < data[t].size(); ++i) data[t][i] = value(rank(), s, t, i);
      Tensor v{data[t].data(), DataType::kF32, {sizes[t]}, Device::host()};
      hs[t] = enqueue_allreduce(prefix + std::to_string(t), v, v, ReduceOp::kSum);
    }
    std::vector<Status> out;
    for (Handle& h : hs) out.push_back(wait(h));
    mark_step();
    return out;
  }

  // Every tensor succeeded and holds the exact sum.
  void run_and_check(int s, std::vector<int> order = {}) {
    std::vector<Status> st = run(s, order);
    for (size_t t = 0; t < sizes.size(); ++t) {
      ASSERT_TRUE(st[t].is_ok()) << "step " << s << " tensor " << t << ": " << st[t].message();
      for (size_t i = 0; i < data[t].size(); ++i) {
        ASSERT_EQ(summed(s, static_cast<int>(t), i), data[t][i])
            << "step " << s << " tensor " << t << " element " << i;
      }
    }
  }
};

void expect_fast_plans_grew(const Stats& before, const char* what) {
  Stats now = stats();
  if (fast_expected()) {
    EXPECT_GT(now.fast_plans, before.fast_plans) << what;
  } else {
    EXPECT_EQ(0u, now.fast_plans) << what;
    EXPECT_EQ(0u, now.schedules) << what;
  }
}

// Whether this rank ran every plan between `a` and `b` on a schedule. A deviation can only be
// counted as leaving the schedule when the rank was on one: under load it may have left it for
// another reason just before (and counted that), and not have learned it again yet. Count the
// fallback from `a`, not `b`: a peer that went ahead to the deviating step can end the schedule
// for this rank too before this rank has read `b`.
bool ran_on_schedule(const Stats& a, const Stats& b) {
  return b.fast_plans > a.fast_plans && b.fast_plans - a.fast_plans == b.plans - a.plans;
}

TEST(FastPath, SteadyStateEntersItAndResultsAreExact) {
  Step step;
  Stats before = stats();
  for (int s = 0; s < 30; ++s) step.run_and_check(s);
  expect_fast_plans_grew(before, "30 identical steps");
  Stats now = stats();
  if (fast_expected()) {
    EXPECT_GE(now.schedules, before.schedules + 1);
    // Almost every plan after the first few steps was a fast one.
    EXPECT_GE(now.fast_plans - before.fast_plans, (now.plans - before.plans) / 2);
  }
}

TEST(FastPath, OtherTypesAndOpsOnTheSchedule) {
  std::vector<int32_t> ints(300);
  std::vector<double> dbl(300);
  for (int s = 0; s < 12; ++s) {
    for (size_t i = 0; i < ints.size(); ++i) {
      ints[i] = static_cast<int32_t>((rank() * 7 + s + i) % 1000);
      dbl[i] = (rank() + 1) * 0.5 * static_cast<double>(i) + s;
    }
    Tensor ti{ints.data(), DataType::kI32, {300}, Device::host()};
    Tensor td{dbl.data(), DataType::kF64, {300}, Device::host()};
    Handle hi = enqueue_allreduce("t.max", ti, ti, ReduceOp::kMax);
    Handle hd = enqueue_allreduce("t.avg", td, td, ReduceOp::kAverage);
    ASSERT_TRUE(wait(hi).is_ok());
    ASSERT_TRUE(wait(hd).is_ok());
    mark_step();
    for (size_t i = 0; i < ints.size(); ++i) {
      int32_t want = 0;
      double sum = 0;
      for (int r = 0; r < size(); ++r) {
        want = std::max(want, static_cast<int32_t>((r * 7 + s + i) % 1000));
        sum += (r + 1) * 0.5 * static_cast<double>(i) + s;
      }
      ASSERT_EQ(want, ints[i]) << "step " << s << " element " << i;
      ASSERT_NEAR(sum / size(), dbl[i], 1e-9 * (1 + sum)) << "step " << s << " element " << i;
    }
  }
}

// A new name, then a changed shape on every rank: each goes back through the coordinator, the
// results stay right, and the job comes back to the fast path once the new step repeats.
TEST(FastPath, NewNameAndNewShapeFallBackAndRecover) {
  Step step;
  for (int s = 0; s < 8; ++s) step.run_and_check(s);
  const Stats warm = stats();
  for (int s = 8; s < 10; ++s) step.run_and_check(s);
  Stats before = stats();
  const bool on_schedule = ran_on_schedule(warm, before);
  step.sizes.push_back(33);  // "g.6" is new
  for (int s = 10; s < 25; ++s) step.run_and_check(s);
  Stats mid = stats();
  if (fast_expected() && on_schedule) {
    EXPECT_GE(mid.fast_fallbacks, warm.fast_fallbacks + 1) << "a new name left the schedule";
    EXPECT_GE(mid.schedules, before.schedules + 1) << "the new step became a schedule";
  }
  expect_fast_plans_grew(before, "after a new name");
  step.sizes[1] = 300;  // same name, new shape on every rank
  for (int s = 25; s < 40; ++s) step.run_and_check(s);
  Stats after = stats();
  if (fast_expected()) {
    // The new shape left the schedule if the job was on one then (under load it may have been
    // back on the coordinator path already, for another reason); either way it ran through the
    // coordinator and a schedule of the new step was handed out.
    EXPECT_GE(after.schedules, mid.schedules + 1) << "the new shape became a schedule";
  }
  expect_fast_plans_grew(mid, "after a new shape");
}

// One rank enqueues a step in reverse order (the framework's backward order changed there): the
// buckets are no longer complete in schedule order, the round goes through the coordinator,
// and nothing is wrong or lost.
TEST(FastPath, OneRankChangesOrder) {
  Step step;
  step.prefix = "o.";
  for (int s = 0; s < 10; ++s) step.run_and_check(s);
  std::vector<int> reversed = {5, 4, 3, 2, 1, 0};
  for (int s = 10; s < 14; ++s) step.run_and_check(s, rank() == size() - 1 ? reversed : std::vector<int>{});
  Stats before = stats();
  for (int s = 14; s < 30; ++s) step.run_and_check(s);
  expect_fast_plans_grew(before, "after the order came back");
}

// Every op on small f32 tensors, in place: their entries carry the readiness vote in their own
// collective. One rank then enqueues them in reverse order for a few steps, so it leaves the
// schedule while the others already sit in a voted collective: every rank drops that result
// and the round goes through the coordinator, which must find the inputs untouched (the
// results are exact), for each op's encoding of the vote.
TEST(FastPath, EveryOpCarriesItsVoteAndAFallBackKeepsTheInputs) {
  const ReduceOp ops[] = {ReduceOp::kSum, ReduceOp::kAverage, ReduceOp::kMin, ReduceOp::kMax,
                          ReduceOp::kProduct};
  const size_t n = 100;
  // Small integers (products of at most 4 ranks' values stay exact in f32).
  auto v = [](int r, int s, int t, size_t i) {
    return static_cast<float>(1 + (r * 5 + s + t + static_cast<int>(i)) % 3);
  };
  auto run_step = [&](int s, bool reversed) {
    std::vector<std::vector<float>> data(5, std::vector<float>(n));
    std::vector<Handle> hs(5);
    for (int k = 0; k < 5; ++k) {
      const int t = reversed ? 4 - k : k;
      for (size_t i = 0; i < n; ++i) data[t][i] = v(rank(), s, t, i);
      Tensor x{data[t].data(), DataType::kF32, {static_cast<int64_t>(n)}, Device::host()};
      hs[t] = enqueue_allreduce("vote." + std::to_string(t), x, x, ops[t]);
      // The reversed rank's framework waits on each before the next, so the schedule's first
      // entry is not complete there when the others are already in its collective.
      if (reversed) (void)wait(hs[t]);
    }
    for (int t = 0; t < 5; ++t) {
      Status st = wait(hs[t]);
      ASSERT_TRUE(st.is_ok()) << "step " << s << " op " << t << ": " << st.message();
      for (size_t i = 0; i < n; ++i) {
        float want = v(0, s, t, i);
        for (int r = 1; r < size(); ++r) {
          const float x = v(r, s, t, i);
          switch (ops[t]) {
            case ReduceOp::kSum:
            case ReduceOp::kAverage: want += x; break;
            case ReduceOp::kMin: want = std::min(want, x); break;
            case ReduceOp::kMax: want = std::max(want, x); break;
            case ReduceOp::kProduct: want *= x; break;
          }
        }
        if (ops[t] == ReduceOp::kAverage) want /= static_cast<float>(size());
        ASSERT_FLOAT_EQ(want, data[t][i]) << "step " << s << " op " << t << " element " << i;
      }
    }
    mark_step();
  };
  for (int s = 0; s < 12; ++s) run_step(s, false);
  const Stats warm = stats();
  for (int s = 12; s < 15; ++s) run_step(s, false);
  Stats before = stats();
  const bool on_schedule = ran_on_schedule(warm, before);
  for (int s = 15; s < 18; ++s) run_step(s, rank() == size() - 1);
  Stats mid = stats();
  if (fast_expected() && size() > 1 && on_schedule) {
    EXPECT_GE(mid.fast_fallbacks, warm.fast_fallbacks + 1) << "the reversed rank left";
  }
  for (int s = 18; s < 35; ++s) run_step(s, false);
  expect_fast_plans_grew(mid, "after the order came back");
}

// After 100 fast steps one rank submits a different shape: every rank gets the coordinator's
// named error, exactly as without the fast path, and the rest of the step is unharmed.
TEST(FastPath, MismatchAfterHundredFastStepsIsNamedOnEveryRank) {
  Step step;
  step.prefix = "m.";
  step.sizes = {3, 257, 5, 17};
  for (int s = 0; s < 100; ++s) step.run_and_check(s);
  Stats before = stats();
  if (fast_expected()) {
    EXPECT_GT(before.fast_plans, 100u);
  }
  if (rank() == 1) step.sizes[2] = 6;
  std::vector<Status> st = step.run(100);
  for (size_t t = 0; t < st.size(); ++t) {
    if (t != 2 || size() == 1) {
      EXPECT_TRUE(st[t].is_ok()) << t << ": " << st[t].message();
      continue;
    }
    std::string others = size() > 2 ? "ranks 0" : "rank 0";
    for (int r = 2; r < size(); ++r) others.append(",").append(std::to_string(r));
    EXPECT_EQ(StatusCode::kMismatch, st[t].code()) << st[t].message();
    EXPECT_EQ("tensor 'm.2': shape [5] on " + others + " but [6] on rank 1", st[t].message());
  }
  step.sizes[2] = 5;
  for (int s = 101; s < 115; ++s) step.run_and_check(s);
  expect_fast_plans_grew(before, "after the mismatch");
}

// A rank that comes late to an agreement (its framework paused) for longer than the fast path
// waits: the round goes back through the coordinator, the results are right.
TEST(FastPath, ALongPauseOnOneRankFallsBackAndRecovers) {
  Step step;
  step.prefix = "p.";
  step.sizes = {64, 64};
  for (int s = 0; s < 8; ++s) step.run_and_check(s);
  const Stats warm = stats();
  for (int s = 8; s < 10; ++s) step.run_and_check(s);
  Stats before = stats();
  const bool on_schedule = ran_on_schedule(warm, before);
  if (rank() == size() - 1) std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  step.run_and_check(10);
  for (int s = 11; s < 25; ++s) step.run_and_check(s);
  if (fast_expected() && size() > 1 && on_schedule) {
    EXPECT_GE(stats().fast_fallbacks, warm.fast_fallbacks + 1) << "the pause left the schedule";
  }
  expect_fast_plans_grew(before, "after the pause");
}

// The blocking allreduce(): exact results on either path; on the fast path the calling thread
// does the work (the counters grow just the same), and a one-tensor step that one rank pauses
// in still comes back right. From a completion callback it is refused with a named error.
TEST(FastPath, BlockingAllreduceRunsOnTheCallersThread) {
  std::vector<float> v(1024);
  auto fill = [&](int s) {
    for (size_t i = 0; i < v.size(); ++i) v[i] = value(rank(), s, 0, i);
  };
  auto check = [&](int s) {
    for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(summed(s, 0, i), v[i]) << s << " " << i;
  };
  Tensor t{v.data(), DataType::kF32, {static_cast<int64_t>(v.size())}, Device::host()};
  Stats before = stats();
  for (int s = 0; s < 200; ++s) {
    fill(s);
    if (s == 150 && rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ASSERT_TRUE(allreduce("b.0", t, t, ReduceOp::kSum).is_ok()) << s;
    check(s);
  }
  expect_fast_plans_grew(before, "blocking allreduce");
  if (fast_expected()) {
    EXPECT_GE(stats().fast_plans, before.fast_plans + 100);
  }

  std::vector<float> w(4, 1.0f);
  Tensor tw{w.data(), DataType::kF32, {4}, Device::host()};
  Status inner;
  Status outer = wait(enqueue_allreduce("b.outer", tw, tw, ReduceOp::kSum, [&](const Status&) {
    inner = allreduce("b.inner", tw, tw, ReduceOp::kSum);
  }));
  ASSERT_TRUE(outer.is_ok()) << outer.message();
  EXPECT_EQ(StatusCode::kFailedPrecondition, inner.code());
  EXPECT_NE(inner.message().find("tensor 'b.inner': allreduce() blocks"), std::string::npos)
      << inner.message();
}

}  // namespace
}  // namespace quorum

int main(int argc, char** argv) { return run_mpi_tests(argc, argv); }
