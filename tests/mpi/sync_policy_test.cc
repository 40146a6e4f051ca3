// Bounded-async rounds and the auto policy, under mpiexec with stragglers made by sleeping.
// Every gradient is one-hot: rank r's gradient of round j is 1 at index r*R + j, so each result
// shows exactly which gradients it applied, and when.
//   Bounded.*  run with QUORUM_SYNC_MODE=bounded QUORUM_STALENESS=2 (see tests/meson.build)
//   Auto.*     run with QUORUM_SYNC_MODE=auto and a short policy window
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <thread>

#include "quorum/quorum.h"
#include "tests/common/rounds.h"
#include "tests/common/test_data.h"
#include "tests/mpi/mpi_main.h"

namespace quorum {
namespace {

constexpr int kStaleness = 2;  // must match QUORUM_STALENESS in tests/meson.build

using testing::sleep_ms;
using testing::slow_rank;

// `in_place`: the output is the gradient's own memory, so a late gradient must be taken into
// the carry before the stored result overwrites it.
void exactly_once_within_staleness(const std::string& tensor, bool in_place) {
  const int p = size(), R = 40;
  const size_t n = static_cast<size_t>(p * R);
  std::vector<std::vector<float>> results;  // per round, as this rank received it
  std::vector<int64_t> counts;
  std::vector<float> grad(n), out(n);
  for (int j = 0; j < R; ++j) {
    // One rank is slow each round (longer than the cycle-time grace), the others are not.
    sleep_ms(slow_rank(11, j) == rank() ? 12 : 1);
    std::fill(grad.begin(), grad.end(), 0.0f);
    grad[static_cast<size_t>(rank() * R + j)] = 1.0f;
    Tensor g{grad.data(), DataType::kF32, {static_cast<int64_t>(n)}, Device::host()};
    Tensor o{in_place ? grad.data() : out.data(), DataType::kF32, {static_cast<int64_t>(n)},
             Device::host()};
    Handle h = enqueue_allreduce(tensor, g, o, ReduceOp::kSum);
    ASSERT_TRUE(wait(h).is_ok());
    results.push_back(in_place ? grad : out);
    counts.push_back(result_count(h));
  }
  std::vector<float> folded(n, 0.0f);
  int64_t folded_count = 0;
  ASSERT_TRUE(flush([&](const std::string& name, const Tensor& t, int64_t gradients) {
                EXPECT_EQ(tensor, name);
                std::memcpy(folded.data(), t.data, n * sizeof(float));
                folded_count = gradients;
              }).is_ok());

  testing::expect_one_hot_exactly_once(results, folded, folded_count, counts, kStaleness);
  // The run really was bounded on a multi-rank job: some rank answered a late request.
  Stats s = stats();
  uint64_t late = s.late_answered;
  MPI_Allreduce(MPI_IN_PLACE, &late, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
  if (p > 2) {
    EXPECT_GT(late, 0u) << "no round ran without its straggler";
  }
  EXPECT_TRUE(s.bounded_mode);
  EXPECT_LE(s.bounded_peak_bytes, static_cast<uint64_t>((kStaleness + 1) * n * sizeof(float)))
      << "stored results and carries are bounded by s per tensor";
}

TEST(Bounded, ExactlyOnceWithinStalenessAndReplicasIdentical) {
  exactly_once_within_staleness("onehot", false);
}

TEST(Bounded, ExactlyOnceWhenTheOutputIsTheInput) {
  exactly_once_within_staleness("onehot.in_place", true);
}

TEST(Bounded, AverageDividesByTheCount) {
  const int R = 20;
  std::vector<float> v(8), out(8);
  int64_t total = 0;
  double applied = 0;
  for (int j = 0; j < R; ++j) {
    sleep_ms(slow_rank(5, j) == rank() ? 12 : 1);
    std::fill(v.begin(), v.end(), static_cast<float>(rank() + 1));  // a rank's value is r+1
    Tensor t{v.data(), DataType::kF32, {8}, Device::host()};
    Tensor o{out.data(), DataType::kF32, {8}, Device::host()};
    Handle h = enqueue_allreduce("avg", t, o, ReduceOp::kAverage);
    ASSERT_TRUE(wait(h).is_ok());
    int64_t c = result_count(h);
    ASSERT_GT(c, 0);
    total += c;
    applied += static_cast<double>(out[0]) * static_cast<double>(c);  // back to the sum
  }
  int64_t folded_count = 0;
  ASSERT_TRUE(flush([&](const std::string&, const Tensor& t, int64_t gradients) {
                applied += static_cast<double>(static_cast<const float*>(t.data)[0]) * gradients;
                folded_count += gradients;
              }).is_ok());
  EXPECT_EQ(static_cast<int64_t>(size()) * R, total + folded_count);
  double expected = R * size() * (size() + 1) / 2.0;  // every rank's r+1, every round
  EXPECT_NEAR(expected, applied, 1e-3 * expected);
}

TEST(Bounded, OtherOpsBroadcastAndAllgatherNeverRunPartially) {
  for (int j = 0; j < 6; ++j) {
    if (rank() == size() - 1) sleep_ms(15);  // a straggler the others would like to skip
    auto in = testing::make_input(70 + j, rank(), 64, DataType::kF32);
    Tensor t{in.data(), DataType::kF32, {64}, Device::host()};
    ASSERT_TRUE(wait(enqueue_allreduce("max", t, t, ReduceOp::kMax)).is_ok());
    auto want = testing::expected_allreduce(70 + j, size(), 64, DataType::kF32, ReduceOp::kMax);
    EXPECT_EQ(0, std::memcmp(want.data(), in.data(), 64 * 4)) << "Max ran without a rank";
    std::vector<int32_t> b(4, rank());
    Tensor bt{b.data(), DataType::kI32, {4}, Device::host()};
    ASSERT_TRUE(wait(enqueue_broadcast("bcast", bt, size() - 1)).is_ok());
    EXPECT_EQ(size() - 1, b[0]) << "broadcast ran without its root";
    std::vector<int32_t> mine(2, rank()), all(2 * static_cast<size_t>(size()));
    Tensor gt{mine.data(), DataType::kI32, {2}, Device::host()};
    ASSERT_TRUE(wait(enqueue_allgather("gather", gt, [&](auto&) -> void* { return all.data(); })).is_ok());
    for (int r = 0; r < size(); ++r) EXPECT_EQ(r, all[static_cast<size_t>(2 * r)]);
  }
}

// A rank that fell behind catches up instead of computing: enqueue_catch_up() takes the result
// of a round that ran without it and adds no gradient. Every gradient a rank did enqueue is
// applied exactly once (results and fold together), a skipped one never, every rank receives
// the same result for every round, and a catch-up with no missed round fails, naming the tensor.
TEST(Bounded, CatchUpTakesMissedRoundsAndAddsNothing) {
  const int p = size(), R = 30, late = p - 1;
  const size_t n = static_cast<size_t>(p * R);
  std::vector<float> grad(n), out(n);
  std::vector<float> results;  // every round's result, as this rank received it, back to back
  std::vector<int> skipped(static_cast<size_t>(R), 0);
  Tensor o{out.data(), DataType::kF32, {static_cast<int64_t>(n)}, Device::host()};
  {  // Not behind: refused at once, and nothing else changes.
    Status s = wait(enqueue_catch_up("catch", o, ReduceOp::kSum));
    EXPECT_EQ(StatusCode::kFailedPrecondition, s.code()) << s.message();
    EXPECT_NE(std::string::npos, s.message().find("'catch'")) << s.message();
    EXPECT_EQ(0u, rounds_behind());
  }
  for (int j = 0; j < R; ++j) {
    if (rank() == late && j > 2 && rounds_behind() > 0) {
      Handle h = enqueue_catch_up("catch", o, ReduceOp::kSum);
      ASSERT_TRUE(wait(h).is_ok()) << "round " << j;
      EXPECT_GT(result_count(h), 0);
      skipped[static_cast<size_t>(j)] = 1;
    } else {
      // The late rank is slow twice (others run ahead, up to the staleness bound); one rank of
      // the others is slow now and then, so the late rank is sometimes early.
      const bool slow = (rank() == late && (j == 3 || j == 12)) || (rank() == 0 && j % 7 == 5);
      sleep_ms(slow ? 40 : 1);
      std::fill(grad.begin(), grad.end(), 0.0f);
      grad[static_cast<size_t>(rank() * R + j)] = 1.0f;
      Tensor g{grad.data(), DataType::kF32, {static_cast<int64_t>(n)}, Device::host()};
      ASSERT_TRUE(wait(enqueue_allreduce("catch", g, o, ReduceOp::kSum)).is_ok()) << j;
    }
    results.insert(results.end(), out.begin(), out.end());
  }
  std::vector<float> folded(n, 0.0f);
  ASSERT_TRUE(flush([&](const std::string&, const Tensor& t, int64_t) {
                std::memcpy(folded.data(), t.data, n * sizeof(float));
              }).is_ok());
  // Every rank's skipped rounds, and rank 0's results to compare with.
  std::vector<int> all_skipped(static_cast<size_t>(R * p));
  MPI_Allgather(skipped.data(), R, MPI_INT, all_skipped.data(), R, MPI_INT, MPI_COMM_WORLD);
  std::vector<float> first = results;
  MPI_Bcast(first.data(), static_cast<int>(first.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
  EXPECT_EQ(0, std::memcmp(first.data(), results.data(), results.size() * sizeof(float)))
      << "rank " << rank() << " received other results than rank 0";
  int caught = 0;
  for (int r = 0; r < p; ++r) {
    for (int j = 0; j < R; ++j) {
      const size_t i = static_cast<size_t>(r * R + j);
      double applied = folded[i];
      for (int k = 0; k < R; ++k) applied += results[static_cast<size_t>(k) * n + i];
      const int skip = all_skipped[static_cast<size_t>(r * R + j)];
      caught += skip;
      EXPECT_EQ(skip ? 0.0 : 1.0, applied) << "rank " << r << "'s gradient of round " << j;
    }
  }
  if (p > 2) {  // as late_answered above
    EXPECT_GT(caught, 0) << "the late rank never caught up";
  }
  EXPECT_EQ(0u, rounds_behind());
}

// Launched with rank 0 in one QUORUM_SYNC_MODE and the others in another (tests/meson.build):
// rank 0's setting decides for every rank, so the job cannot split.
TEST(Rank0, DecidesTheMode) {
  std::vector<float> g(16, 1.0f);
  Tensor t{g.data(), DataType::kF32, {16}, Device::host()};
  for (int k = 0; k < 5; ++k) ASSERT_TRUE(wait(enqueue_allreduce("m", t, t)).is_ok());
  const char* expected = std::getenv("EXPECT_BOUNDED");
  ASSERT_NE(nullptr, expected);
  EXPECT_EQ(std::string(expected) == "1", stats().bounded_mode) << "rank " << rank();
  ASSERT_TRUE(flush().is_ok());
}

// Runs `rounds` steps in which rank slow(k) sleeps `straggle_ms` and the others `base_ms`;
// true when every rank is in bounded mode at the end.
bool run_phase(const char* name, int rounds, double straggle_ms, const std::function<int(int)>& slow,
               double base_ms = 1) {
  std::vector<float> g(256, 1.0f);
  Tensor t{g.data(), DataType::kF32, {256}, Device::host()};
  for (int k = 0; k < rounds; ++k) {
    sleep_ms(slow(k) == rank() ? straggle_ms : base_ms);
    EXPECT_TRUE(wait(enqueue_allreduce("pilot", t, t, ReduceOp::kAverage)).is_ok());
    mark_step();
  }
  (void)name;
  int bounded = stats().bounded_mode ? 1 : 0, all = 0;
  MPI_Allreduce(&bounded, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_TRUE(all == 0 || all == size()) << "ranks disagree about the mode";
  return all == size();
}

TEST(Auto, EntersUnderTransientStragglersLeavesWhenTheyStopAndOnPersistentOnes) {
  if (size() < 3) GTEST_SKIP() << "a quorum below the job size needs at least 3 ranks";
  // Window 8 (QUORUM_POLICY_WINDOW): each phase is long enough for a decision and its effect.
  auto transient = [](int k) { return slow_rank(3, k); };
  EXPECT_TRUE(run_phase("transient", 30, 25, transient)) << "did not enter bounded";
  // Quiet steps of 6 ms: with 1 ms steps, scheduling noise alone (4 ranks on 2 busy cores) can
  // be 10-20% of a step and look like stragglers. On a machine loaded by other work it can stay
  // above the exit share for a window or two even so: up to three quiet phases (every rank
  // agrees on the mode, so every rank runs the same number).
  bool still_bounded = true;
  for (int phase = 0; phase < 3 && still_bounded; ++phase) {
    still_bounded = run_phase("quiet", 30, 0, [](int) { return -1; }, 6);
  }
  EXPECT_FALSE(still_bounded) << "did not return to sync in 90 quiet steps";
  EXPECT_TRUE(run_phase("transient again", 30, 25, transient)) << "did not re-enter bounded";
  EXPECT_FALSE(run_phase("persistent", 40, 25, [](int) { return 1; }))
      << "a persistent straggler must send it back to sync";
  EXPECT_FALSE(run_phase("persistent, later", 20, 25, [](int) { return 1; }))
      << "and keep it there";
  ASSERT_TRUE(flush().is_ok());
}

}  // namespace
}  // namespace quorum

int main(int argc, char** argv) { return run_mpi_tests(argc, argv); }
