// Periodic model averaging (QUORUM_SYNC_MODE=periodic|auto): begin_step() gives every rank the
// same plan for every step, local SGD lets replicas drift apart between averagings, and after
// each average_parameters() the replicas are bitwise identical and equal to the exact average
// (never compressed, even under QUORUM_COMPRESSION). In auto mode, a communication-bound loop
// is switched to periodic and a compute-bound one is not. meson runs it with
// QUORUM_AVERAGE_PERIOD=4 and QUORUM_AVERAGE_WARMUP=3.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "quorum/quorum.h"
#include "tests/common/agree.h"
#include "tests/mpi/mpi_main.h"

namespace quorum {
namespace {

std::string env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

// Every rank's value of `x`, gathered.
std::vector<uint64_t> gather(uint64_t x) {
  std::vector<uint64_t> all(static_cast<size_t>(size()));
  EXPECT_EQ(MPI_SUCCESS,
            MPI_Allgather(&x, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD));
  return all;
}

bool same_everywhere(uint64_t x) {
  for (uint64_t v : gather(x)) {
    if (v != x) return false;
  }
  return true;
}

uint64_t plan_bits(const StepPlan& p) { return p.step * 4 + (p.local ? 2 : 0) + (p.average ? 1 : 0); }

// A model of two tensors (f32 and f64) stepped with rank-specific gradients.
struct Model {
  std::vector<float> w = std::vector<float>(1000, 0.5f);
  std::vector<double> b = std::vector<double>(37, -1.0);
  std::mt19937 gen{static_cast<unsigned>(99 + rank())};

  std::vector<NamedTensor> params() {
    return {{"w", Tensor{w.data(), DataType::kF32, {static_cast<int64_t>(w.size())}, Device::host()}},
            {"b", Tensor{b.data(), DataType::kF64, {static_cast<int64_t>(b.size())}, Device::host()}}};
  }

  // One step: gradients, allreduced unless the plan is local, then w -= 0.01 g.
  void step(const StepPlan& plan) {
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> gw(w.size());
    std::vector<double> gb(b.size());
    for (float& g : gw) g = d(gen);
    for (double& g : gb) g = d(gen);
    if (!plan.local) {
      Tensor tw{gw.data(), DataType::kF32, {static_cast<int64_t>(gw.size())}, Device::host()};
      Tensor tb{gb.data(), DataType::kF64, {static_cast<int64_t>(gb.size())}, Device::host()};
      Handle hw = enqueue_allreduce("grad.w", tw, tw);
      Handle hb = enqueue_allreduce("grad.b", tb, tb);
      ASSERT_TRUE(wait(hw).is_ok());
      ASSERT_TRUE(wait(hb).is_ok());
    }
    for (size_t i = 0; i < w.size(); ++i) w[i] -= 0.01f * gw[i];
    for (size_t i = 0; i < b.size(); ++i) b[i] -= 0.01 * gb[i];
  }

  uint64_t hash() const {
    using testing::fnv1a;
    return fnv1a(w.data(), w.size() * 4) ^ (fnv1a(b.data(), b.size() * 8) << 1);
  }
};

TEST(Periodic, EveryRankPlansTheSameStepsAndAveragingMakesReplicasIdentical) {
  const std::string mode = env("QUORUM_SYNC_MODE", "sync");
  const int period = std::atoi(env("QUORUM_AVERAGE_PERIOD", "8").c_str());
  const int warmup = std::atoi(env("QUORUM_AVERAGE_WARMUP", "0").c_str());
  Model m;
  const Stats before = stats();
  int averaged = 0, local = 0;
  for (int i = 0; i < 23; ++i) {
    StepPlan plan = begin_step();
    ASSERT_TRUE(same_everywhere(plan_bits(plan))) << "step " << i;
    if (mode == "periodic") {
      const bool want_local = i >= warmup;
      EXPECT_EQ(plan.local, want_local) << "step " << i;
      EXPECT_EQ(plan.average, want_local && (i - warmup) % period == period - 1) << "step " << i;
    }
    m.step(plan);
    local += plan.local ? 1 : 0;
    if (plan.local && !plan.average && size() > 1 && i > warmup) {
      EXPECT_FALSE(same_everywhere(m.hash())) << "local steps should drift apart, step " << i;
    }
    if (!plan.local) {
      EXPECT_TRUE(same_everywhere(m.hash())) << "gradient steps keep replicas equal, step " << i;
    }
    if (plan.average) {
      // The exact average, for comparison: in double over MPI directly.
      std::vector<double> sum(m.w.begin(), m.w.end());
      MPI_Allreduce(MPI_IN_PLACE, sum.data(), static_cast<int>(sum.size()), MPI_DOUBLE, MPI_SUM,
                    MPI_COMM_WORLD);
      Status s = average_parameters(m.params());
      ASSERT_TRUE(s.is_ok()) << s.message();
      ++averaged;
      EXPECT_TRUE(same_everywhere(m.hash())) << "replicas differ after averaging, step " << i;
      double worst = 0;
      for (size_t k = 0; k < m.w.size(); ++k) {
        worst = std::max(worst, std::abs(m.w[k] - sum[k] / size()));
      }
      EXPECT_LE(worst, 1e-6) << "parameters were not averaged exactly (compressed?)";
    }
  }
  const Stats after = stats();
  EXPECT_EQ(after.averagings - before.averagings, static_cast<uint64_t>(averaged));
  EXPECT_EQ(after.local_steps - before.local_steps, static_cast<uint64_t>(local));
  if (mode == "periodic") {
    EXPECT_GT(averaged, 0);
  }
  if (mode == "sync" || mode == "bounded") {
    EXPECT_EQ(local, 0);
  }
}

TEST(Periodic, AveragingRejectsMismatchedParametersOnEveryRank) {
  std::vector<float> w(rank() == 0 ? 10 : 11, 1.0f);
  Status s = average_parameters(
      {{"odd", Tensor{w.data(), DataType::kF32, {static_cast<int64_t>(w.size())}, Device::host()}}});
  if (size() == 1) {
    EXPECT_TRUE(s.is_ok());
  } else {
    EXPECT_FALSE(s.is_ok());
    EXPECT_NE(s.message().find("quorum.params.odd"), std::string::npos) << s.message();
  }
}

// auto only: segments of big allreduces with no compute are communication-bound and go
// periodic; segments of a tiny allreduce next to 20 ms of compute stay with gradient rounds.
TEST(Periodic, AutoPicksPeriodicWhenCommunicationDominates) {
  if (env("QUORUM_SYNC_MODE", "sync") != "auto") GTEST_SKIP() << "QUORUM_SYNC_MODE=auto only";
  if (size() == 1) GTEST_SKIP() << "one rank does not communicate";
  const int period = std::atoi(env("QUORUM_AVERAGE_PERIOD", "8").c_str());
  std::vector<float> big(size_t{1} << 20, 1.0f);  // 4 MiB
  // Which of `segments` segments ran periodic.
  auto run_segments = [&](int segments, bool comm_bound) {
    std::vector<bool> periodic;
    for (int k = 0; k < segments; ++k) {
      bool any_local = false;
      for (int i = 0; i < period; ++i) {
        StepPlan plan = begin_step();
        EXPECT_TRUE(same_everywhere(plan_bits(plan)));
        any_local = any_local || plan.local;
        if (plan.local) {
          // a local step: no gradient allreduce
        } else if (comm_bound) {
          Tensor t{big.data(), DataType::kF32, {static_cast<int64_t>(big.size())}, Device::host()};
          EXPECT_TRUE(allreduce("auto.big", t, t).is_ok());
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          float x = 1;
          Tensor t{&x, DataType::kF32, {1}, Device::host()};
          EXPECT_TRUE(allreduce("auto.tiny", t, t).is_ok());
        }
        if (plan.average) {
          Tensor t{big.data(), DataType::kF32, {static_cast<int64_t>(big.size())}, Device::host()};
          EXPECT_TRUE(average_parameters({{"big", t}}).is_ok());
        }
      }
      periodic.push_back(any_local);
    }
    return periodic;
  };
  // Communication-bound: periodic after at most one segment of evidence. Long enough that a
  // re-measurement (after 8 periodic segments, which may have begun in the test before) has come
  // and gone whatever the policy's state on entry: the last two segments are periodic.
  std::vector<bool> p = run_segments(12, /*comm_bound=*/true);
  EXPECT_TRUE(p[10] && p[11]) << "a communication-bound loop did not go periodic";
  // Compute-bound: periodic goes on until the policy measures gradient rounds again (after 8
  // periodic segments), which then show communication is cheap: the last segments are not.
  p = run_segments(12, /*comm_bound=*/false);
  EXPECT_FALSE(p[10] || p[11]) << "a compute-bound loop stayed periodic";
}

}  // namespace
}  // namespace quorum

int main(int argc, char** argv) { return run_mpi_tests(argc, argv); }
