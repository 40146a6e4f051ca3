// CostModel's hierarchical algorithm: predicted as the sum of an intra-host and an inter-host
// level, each fitted from its own phase timings (observe_levels), chosen by auto only where it
// is allowed, and its crossovers against the flat algorithms.
#include <gtest/gtest.h>

#include <vector>

#include "coordinator/cost_model.h"

namespace quorum::coord {
namespace {

constexpr double kUs = 1e-6;
constexpr double kPerGBs = 1e-9;  // seconds per byte at 1 GB/s

// Written out independently of cost_terms(): a ring over p ranks of n bytes.
double ring_seconds(AlphaBeta ab, double n, int p) {
  return 2.0 * (p - 1) * ab.alpha + 2.0 * (p - 1) / p * n * ab.beta;
}

// 2 hosts x 2 ranks: shared memory inside (2 us, 5 GB/s), a slow network across (50 us,
// 0.125 GB/s, 1 Gbit/s).
constexpr AlphaBeta kShm{2 * kUs, 0.2 * kPerGBs};
constexpr AlphaBeta kNet{50 * kUs, 8 * kPerGBs};
constexpr int kHosts = 2, kPerHost = 2, kRanks = 4;

double intra_truth(size_t n) { return ring_seconds(kShm, static_cast<double>(n), kPerHost); }
double inter_truth(size_t n) {
  return ring_seconds(kNet, static_cast<double>(n / kPerHost), kHosts);
}

CostModelOptions two_by_two() {
  CostModelOptions o;
  o.shape = {kHosts, kPerHost};
  o.allowed = {false, true, false, true};
  o.explore_every = 0;
  return o;
}

std::vector<size_t> sizes() {
  std::vector<size_t> out;
  for (int k = 0; k <= 26; k += 2) out.push_back(size_t{1} << k);
  return out;
}

void feed_levels(CostModel& m) {
  for (size_t n : sizes()) {
    m.observe(Algorithm::kHierarchical, n, kRanks, intra_truth(n) + inter_truth(n));
    m.observe_levels(n, intra_truth(n), inter_truth(n));
  }
}

TEST(CostModelLevels, OffByDefault) {
  CostModelOptions o;
  EXPECT_FALSE(o.allowed[static_cast<size_t>(Algorithm::kHierarchical)]);
  EXPECT_EQ(algorithm_name(Algorithm::kHierarchical), "hierarchical");
  CostModel m(o);
  for (size_t n : sizes()) EXPECT_NE(m.choose(n, kRanks), Algorithm::kHierarchical) << n;
}

TEST(CostModelLevels, EachLevelIsFittedFromItsOwnTimings) {
  CostModel m(two_by_two());
  EXPECT_FALSE(m.fitted(Algorithm::kHierarchical));
  feed_levels(m);
  ASSERT_TRUE(m.level_fitted(Level::kIntra));
  ASSERT_TRUE(m.level_fitted(Level::kInter));
  EXPECT_TRUE(m.fitted(Algorithm::kHierarchical));
  EXPECT_NEAR(m.level_params(Level::kIntra).alpha, kShm.alpha, kShm.alpha * 1e-6);
  EXPECT_NEAR(m.level_params(Level::kIntra).beta, kShm.beta, kShm.beta * 1e-6);
  EXPECT_NEAR(m.level_params(Level::kInter).alpha, kNet.alpha, kNet.alpha * 1e-6);
  EXPECT_NEAR(m.level_params(Level::kInter).beta, kNet.beta, kNet.beta * 1e-6);
  // The prediction is the sum of the levels, over the shape (not the flat rank count).
  for (size_t n : {size_t{4096}, size_t{16} << 20}) {
    const double want = intra_truth(n) + inter_truth(n);
    EXPECT_NEAR(m.predict(Algorithm::kHierarchical, n, kRanks), want, want * 1e-6) << n;
  }
}

TEST(CostModelLevels, LevelsWithOneRankAreIgnored) {
  CostModelOptions o = two_by_two();
  o.shape = {4, 1};  // one rank per host: there is no intra-host level to fit
  CostModel m(o);
  for (size_t n : sizes()) m.observe_levels(n, 1e-3, 1e-3);
  EXPECT_FALSE(m.level_fitted(Level::kIntra));
  EXPECT_TRUE(m.level_fitted(Level::kInter));
}

TEST(CostModelLevels, AutoPicksHierarchicalWhereTheNetworkIsSlow) {
  CostModel m(two_by_two());
  feed_levels(m);
  // A flat ring over 4 ranks crosses the network on two of its links: each step is as slow as
  // its slowest link, so the ring pays the network's beta on 1.5 n per rank.
  for (size_t n : sizes()) {
    m.observe(Algorithm::kRing, n, kRanks, ring_seconds(kNet, static_cast<double>(n), kRanks));
  }
  EXPECT_EQ(m.choose(size_t{16} << 20, kRanks), Algorithm::kHierarchical);
  EXPECT_EQ(m.choose(size_t{64} << 20, kRanks), Algorithm::kHierarchical);
  // Hierarchical: 2 intra alphas + 2 inter; ring: 6 network alphas. It wins at every size.
  EXPECT_EQ(m.crossover_bytes(Algorithm::kHierarchical, Algorithm::kRing, kRanks), size_t{0});
  EXPECT_EQ(m.crossover_bytes(Algorithm::kRing, Algorithm::kHierarchical, kRanks), std::nullopt);
}

TEST(CostModelLevels, CrossoverAgainstAFasterStartingAlgorithm) {
  // A tree with a small alpha and a large beta wins small messages; hierarchical wins from
  // the size where the lines cross.
  CostModelOptions o = two_by_two();
  o.allowed = {false, false, true, true};
  CostModel m(o);
  feed_levels(m);
  const AlphaBeta tree{10 * kUs, 16 * kPerGBs};
  for (size_t n : sizes()) {
    m.observe(Algorithm::kTree, n, kRanks, 2 * (tree.alpha + static_cast<double>(n) * tree.beta));
  }
  const std::optional<size_t> at =
      m.crossover_bytes(Algorithm::kHierarchical, Algorithm::kTree, kRanks);
  ASSERT_TRUE(at.has_value());
  EXPECT_GT(*at, 0u);
  EXPECT_LT(m.predict(Algorithm::kHierarchical, *at, kRanks), m.predict(Algorithm::kTree, *at, kRanks));
  EXPECT_GE(m.predict(Algorithm::kHierarchical, *at - 1, kRanks),
            m.predict(Algorithm::kTree, *at - 1, kRanks));
  EXPECT_EQ(m.choose(*at / 4, kRanks), Algorithm::kTree);
  EXPECT_EQ(m.choose(*at * 4, kRanks), Algorithm::kHierarchical);
}

}  // namespace
}  // namespace quorum::coord
