// CostModel: the alpha/beta terms of each algorithm, fitting (exact on noise-free data, close on
// noisy data, the prior when data are missing or degenerate, a bounded window), the choice and
// the crossover following the data, and exploration that happens, is bounded and stops once a
// size bucket has data.
#include "coordinator/cost_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace quorum::coord {
namespace {

constexpr double kUs = 1e-6;
constexpr double kPerGBs = 1e-9;  // seconds per byte at 1 GB/s

// Written out independently of cost_terms(), so the tests check the formulas too.
double ring_seconds(AlphaBeta ab, size_t n, int p) {
  return 2.0 * (p - 1) * ab.alpha + 2.0 * (p - 1) / p * static_cast<double>(n) * ab.beta;
}

double tree_seconds(AlphaBeta ab, size_t n, int p) {
  int log2p = 0;
  while ((2 << log2p) <= p) ++log2p;
  const bool pow2 = (1 << log2p) == p;
  const double steps = log2p + (pow2 ? 0 : 2);
  return steps * (ab.alpha + static_cast<double>(n) * ab.beta);
}

double truth(Algorithm a, AlphaBeta ab, size_t n, int p) {
  return a == Algorithm::kTree ? tree_seconds(ab, n, p) : ring_seconds(ab, n, p);
}

// Sizes 1 B .. 64 MiB in powers of two.
std::vector<size_t> sizes() {
  std::vector<size_t> out;
  for (int k = 0; k <= 26; ++k) out.push_back(size_t{1} << k);
  return out;
}

void feed(CostModel& m, Algorithm a, AlphaBeta ab, int p, int repeats = 1) {
  for (int r = 0; r < repeats; ++r) {
    for (size_t n : sizes()) m.observe(a, n, p, truth(a, ab, n, p));
  }
}

CostModelOptions ring_and_tree_only() {
  CostModelOptions o;
  o.allowed = {false, true, true};
  o.explore_every = 0;
  return o;
}

TEST(CostModel, Names) {
  EXPECT_EQ(algorithm_name(Algorithm::kNative), "native");
  EXPECT_EQ(algorithm_name(Algorithm::kRing), "ring");
  EXPECT_EQ(algorithm_name(Algorithm::kTree), "tree");
}

TEST(CostModel, TermsPerAlgorithm) {
  CostTerms ring = cost_terms(Algorithm::kRing, 1000, 4);
  EXPECT_DOUBLE_EQ(ring.alpha_terms, 6);
  EXPECT_DOUBLE_EQ(ring.beta_terms, 1500);
  CostTerms native = cost_terms(Algorithm::kNative, 1000, 4);
  EXPECT_DOUBLE_EQ(native.alpha_terms, 6);
  EXPECT_DOUBLE_EQ(native.beta_terms, 1500);
  // Recursive doubling: log2 p exchanges; a non-power of two adds fold-in and fold-out.
  for (auto [p, steps] : std::vector<std::pair<int, double>>{
           {2, 1}, {3, 3}, {4, 2}, {5, 4}, {7, 4}, {8, 3}, {12, 5}}) {
    CostTerms tree = cost_terms(Algorithm::kTree, 1000, p);
    EXPECT_DOUBLE_EQ(tree.alpha_terms, steps) << p;
    EXPECT_DOUBLE_EQ(tree.beta_terms, steps * 1000) << p;
  }
  for (Algorithm a : {Algorithm::kNative, Algorithm::kRing, Algorithm::kTree}) {
    CostTerms one = cost_terms(a, 1000, 1);
    EXPECT_EQ(one.alpha_terms, 0);
    EXPECT_EQ(one.beta_terms, 0);
  }
}

TEST(CostModel, PriorWithoutSamples) {
  CostModel m;
  const AlphaBeta prior{5 * kUs, 0.2 * kPerGBs};
  for (Algorithm a : {Algorithm::kNative, Algorithm::kRing, Algorithm::kTree}) {
    EXPECT_FALSE(m.fitted(a));
    EXPECT_EQ(m.samples(a), 0u);
    EXPECT_DOUBLE_EQ(m.params(a).alpha, prior.alpha);
    EXPECT_DOUBLE_EQ(m.params(a).beta, prior.beta);
    for (size_t n : {size_t{0}, size_t{100}, size_t{1} << 24}) {
      EXPECT_NEAR(m.predict(a, n, 4), truth(a, prior, n, 4), 1e-15) << algorithm_name(a) << n;
    }
    EXPECT_EQ(m.predict(a, 1 << 20, 1), 0);
  }
}

TEST(CostModel, TooFewSamplesKeepThePrior) {
  CostModel m;
  const AlphaBeta ab{1 * kUs, 1 * kPerGBs};
  for (size_t n : {size_t{8}, size_t{1} << 20, size_t{1} << 24}) {
    m.observe(Algorithm::kRing, n, 4, truth(Algorithm::kRing, ab, n, 4));
  }
  EXPECT_EQ(m.samples(Algorithm::kRing), 3u);
  EXPECT_FALSE(m.fitted(Algorithm::kRing));
  EXPECT_DOUBLE_EQ(m.params(Algorithm::kRing).alpha, 5 * kUs);
  m.observe(Algorithm::kRing, 4096, 4, truth(Algorithm::kRing, ab, 4096, 4));
  EXPECT_TRUE(m.fitted(Algorithm::kRing));
}

TEST(CostModel, DegenerateSamplesKeepThePrior) {
  // Every sample the same size: alpha and beta cannot be separated.
  CostModel m;
  const AlphaBeta ab{1 * kUs, 1 * kPerGBs};
  for (int i = 0; i < 50; ++i) {
    m.observe(Algorithm::kTree, 4096, 4, truth(Algorithm::kTree, ab, 4096, 4));
  }
  EXPECT_FALSE(m.fitted(Algorithm::kTree));
  EXPECT_DOUBLE_EQ(m.params(Algorithm::kTree).alpha, 5 * kUs);
  EXPECT_DOUBLE_EQ(m.params(Algorithm::kTree).beta, 0.2 * kPerGBs);
}

TEST(CostModel, UninformativeObservationsAreIgnored) {
  CostModel m;
  m.observe(Algorithm::kRing, 1024, 1, 1e-5);  // one rank moves nothing
  m.observe(Algorithm::kRing, 1024, 4, 0);
  m.observe(Algorithm::kRing, 1024, 4, -1);
  m.observe(Algorithm::kRing, 1024, 4, std::nan(""));
  m.observe(Algorithm::kRing, 1024, 4, INFINITY);
  EXPECT_EQ(m.samples(Algorithm::kRing), 0u);
}

TEST(CostModel, NoiseFreeFitRecoversAlphaAndBeta) {
  CostModel m;
  const AlphaBeta ring{3 * kUs, 0.1 * kPerGBs};
  const AlphaBeta tree{8 * kUs, 0.4 * kPerGBs};
  const AlphaBeta native{2 * kUs, 0.15 * kPerGBs};
  feed(m, Algorithm::kRing, ring, 4);
  feed(m, Algorithm::kTree, tree, 4);
  feed(m, Algorithm::kTree, tree, 3);  // mixed rank counts fit the same coefficients
  feed(m, Algorithm::kNative, native, 2);
  for (auto [a, want] : std::vector<std::pair<Algorithm, AlphaBeta>>{
           {Algorithm::kRing, ring}, {Algorithm::kTree, tree}, {Algorithm::kNative, native}}) {
    ASSERT_TRUE(m.fitted(a)) << algorithm_name(a);
    EXPECT_NEAR(m.params(a).alpha, want.alpha, want.alpha * 1e-9) << algorithm_name(a);
    EXPECT_NEAR(m.params(a).beta, want.beta, want.beta * 1e-9) << algorithm_name(a);
  }
}

TEST(CostModel, NoisyFitStaysWithinTolerance) {
  CostModel m;
  const AlphaBeta ring{4 * kUs, 0.25 * kPerGBs};
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int> log_size(0, 26);
  std::uniform_real_distribution<double> noise(0.9, 1.1);  // +-10% per sample
  for (int i = 0; i < 256; ++i) {
    const size_t n = size_t{1} << log_size(rng);
    m.observe(Algorithm::kRing, n, 4, truth(Algorithm::kRing, ring, n, 4) * noise(rng));
  }
  ASSERT_TRUE(m.fitted(Algorithm::kRing));
  EXPECT_NEAR(m.params(Algorithm::kRing).alpha, ring.alpha, ring.alpha * 0.05);
  EXPECT_NEAR(m.params(Algorithm::kRing).beta, ring.beta, ring.beta * 0.05);
}

TEST(CostModel, NegativeCoefficientIsClampedToZero) {
  // Pure bandwidth with noise that would pull alpha below zero: a non-negative fit instead.
  CostModel m;
  for (size_t n : sizes()) {
    const double t = 1.5 * n * kPerGBs * (n % 2 == 0 ? 1.0 : 0.5);  // 1-byte samples run fast
    m.observe(Algorithm::kRing, n, 4, t);
  }
  ASSERT_TRUE(m.fitted(Algorithm::kRing));
  EXPECT_EQ(m.params(Algorithm::kRing).alpha, 0);
  EXPECT_GT(m.params(Algorithm::kRing).beta, 0);
}

TEST(CostModel, WindowKeepsOnlyRecentObservations) {
  CostModelOptions o;
  o.window = 64;
  CostModel m(o);
  const AlphaBeta old_regime{20 * kUs, 2 * kPerGBs};
  const AlphaBeta new_regime{2 * kUs, 0.1 * kPerGBs};
  for (int i = 0; i < 100; ++i) {
    const size_t n = size_t{1} << (i % 27);
    m.observe(Algorithm::kTree, n, 4, truth(Algorithm::kTree, old_regime, n, 4));
  }
  EXPECT_EQ(m.samples(Algorithm::kTree), 64u);
  EXPECT_NEAR(m.params(Algorithm::kTree).alpha, old_regime.alpha, old_regime.alpha * 1e-9);
  for (int i = 0; i < 64; ++i) {
    const size_t n = size_t{1} << (i % 27);
    m.observe(Algorithm::kTree, n, 4, truth(Algorithm::kTree, new_regime, n, 4));
  }
  EXPECT_EQ(m.samples(Algorithm::kTree), 64u);
  EXPECT_NEAR(m.params(Algorithm::kTree).alpha, new_regime.alpha, new_regime.alpha * 1e-9);
  EXPECT_NEAR(m.params(Algorithm::kTree).beta, new_regime.beta, new_regime.beta * 1e-9);
}

TEST(CostModel, ChoosesTreeForTinyAndRingForLargeWhenTheDataSaySo) {
  CostModel m(ring_and_tree_only());
  const AlphaBeta link{5 * kUs, 0.2 * kPerGBs};  // same link: ring pays more latency, less volume
  feed(m, Algorithm::kRing, link, 4);
  feed(m, Algorithm::kTree, link, 4);
  EXPECT_EQ(m.choose(8, 4), Algorithm::kTree);
  EXPECT_EQ(m.choose(4096, 4), Algorithm::kTree);
  EXPECT_EQ(m.choose(size_t{64} << 20, 4), Algorithm::kRing);

  // If tree measures twice ring's bandwidth, the data win over the formula's shape.
  CostModel fast_tree(ring_and_tree_only());
  feed(fast_tree, Algorithm::kRing, link, 4);
  feed(fast_tree, Algorithm::kTree, {5 * kUs, 0.1 * kPerGBs}, 4);
  EXPECT_EQ(fast_tree.choose(8, 4), Algorithm::kTree);
  EXPECT_EQ(fast_tree.choose(size_t{64} << 20, 4), Algorithm::kTree);
}

TEST(CostModel, NativeWinsTiesAndIsChosenWhenFastest) {
  CostModelOptions o;
  o.explore_every = 0;
  CostModel m(o);
  // Priors: native == ring, so native (the lower enum) takes large messages.
  EXPECT_EQ(m.choose(size_t{64} << 20, 4), Algorithm::kNative);
  feed(m, Algorithm::kNative, {50 * kUs, 1 * kPerGBs}, 4);  // a slow native
  EXPECT_EQ(m.choose(size_t{64} << 20, 4), Algorithm::kRing);
}

TEST(CostModel, CrossoverFollowsTheObservations) {
  CostModel m(ring_and_tree_only());
  const AlphaBeta link{5 * kUs, 0.2 * kPerGBs};
  feed(m, Algorithm::kRing, link, 4);
  feed(m, Algorithm::kTree, link, 4);
  // p = 4: ring 6a + 1.5nb, tree 2a + 2nb; ring wins above n = 8a/b = 200 kB.
  std::optional<size_t> c = m.crossover_bytes(4);
  ASSERT_TRUE(c.has_value());
  EXPECT_NEAR(static_cast<double>(*c), 8 * link.alpha / link.beta, 2);
  EXPECT_LT(m.predict(Algorithm::kRing, *c, 4), m.predict(Algorithm::kTree, *c, 4));
  EXPECT_GE(m.predict(Algorithm::kRing, *c - 1, 4), m.predict(Algorithm::kTree, *c - 1, 4));
  EXPECT_EQ(m.choose(*c - 1, 4), Algorithm::kTree);
  EXPECT_EQ(m.choose(*c, 4), Algorithm::kRing);

  // Ring's links turn out slower: a full window of new data moves the crossover up.
  const AlphaBeta slow_ring{5 * kUs, 0.25 * kPerGBs};
  feed(m, Algorithm::kRing, slow_ring, 4, 10);
  std::optional<size_t> later = m.crossover_bytes(4);
  ASSERT_TRUE(later.has_value());
  // 6a + 1.5 n b_r = 2a + 2 n b_t  =>  n = 4a / (2 b_t - 1.5 b_r)
  EXPECT_NEAR(static_cast<double>(*later), 4 * link.alpha / (2 * link.beta - 1.5 * slow_ring.beta),
              2);
  EXPECT_GT(*later, *c);

  // So slow that ring never wins.
  feed(m, Algorithm::kRing, {5 * kUs, 0.5 * kPerGBs}, 4, 10);
  EXPECT_FALSE(m.crossover_bytes(4).has_value());
}

TEST(CostModel, CrossoverEdgeCases) {
  CostModel m;
  EXPECT_FALSE(m.crossover_bytes(1).has_value());
  // Two ranks with equal coefficients: ring 2a + nb, tree a + nb: ring never wins.
  EXPECT_FALSE(m.crossover_bytes(2).has_value());
  // Three ranks: ring 4a + 4/3 nb, tree 3(a + nb): ring wins above a / (5/3 b) = 15 kB.
  std::optional<size_t> c = m.crossover_bytes(3);
  ASSERT_TRUE(c.has_value());
  EXPECT_NEAR(static_cast<double>(*c), 15000, 2);
  // A tree with huge latency: ring wins from the first byte.
  CostModelOptions o;
  o.priors[static_cast<size_t>(Algorithm::kTree)] = {1000 * kUs, 0.2 * kPerGBs};
  EXPECT_EQ(CostModel(o).crossover_bytes(4), std::optional<size_t>(0));
}

TEST(CostModel, SizeBuckets) {
  EXPECT_EQ(CostModel::size_bucket(0), 0);
  EXPECT_EQ(CostModel::size_bucket(1), 1);
  EXPECT_EQ(CostModel::size_bucket(2), 2);
  EXPECT_EQ(CostModel::size_bucket(3), 2);
  EXPECT_EQ(CostModel::size_bucket(4), 3);
  EXPECT_EQ(CostModel::size_bucket(1023), 10);
  EXPECT_EQ(CostModel::size_bucket(1024), 11);
  EXPECT_EQ(CostModel::size_bucket(SIZE_MAX), 64);
}

TEST(CostModel, ExplorationIsEveryNthDecisionWithoutData) {
  CostModel m;  // explore_every 16, nothing observed
  // 1 KiB over 4 ranks: the priors favour tree (2a + 2nb vs 6a + 1.5nb).
  int explored = 0;
  for (int i = 1; i <= 160; ++i) {
    Algorithm a = m.choose(1024, 4);
    if (i % 16 == 0) {
      // Both alternatives lack data; the lower enum goes first.
      EXPECT_EQ(a, Algorithm::kNative) << i;
      ++explored;
    } else {
      EXPECT_EQ(a, Algorithm::kTree) << i;
    }
  }
  EXPECT_EQ(explored, 10);
}

TEST(CostModel, ExplorationStopsOnceTheBucketHasDataThenOnlyRefreshes) {
  // explore_every 16, explore_min_samples 8, refresh_every 128; every alternative stays worth
  // exploring (ring-like native is 2.9x tree here: see HopelessAlternativesAreNotExplored).
  CostModelOptions o;
  o.explore_max_ratio = 0;
  CostModel m(o);
  const AlphaBeta link{5 * kUs, 0.2 * kPerGBs};
  // The engine's loop: choose, run, observe what ran.
  std::vector<std::pair<int, Algorithm>> explored;  // (decision, algorithm) off the best
  for (int i = 1; i <= 1000; ++i) {
    const size_t n = 1024 + static_cast<size_t>(i % 7);  // same bucket
    Algorithm a = m.choose(n, 4);
    if (a != Algorithm::kTree) {
      explored.emplace_back(i, a);
      EXPECT_EQ(i % 16, 0) << "exploration off its schedule at decision " << i;
    }
    m.observe(a, n, 4, truth(a, link, n, 4));
  }
  // explore_min_samples (8) for each of the two alternatives, every 16th decision ...
  ASSERT_GE(explored.size(), 16u);
  EXPECT_EQ(explored[15].first, 16 * 16);
  // ... then a refresh every 128th decision, alternating between them: 384, 512, ..., 896.
  std::vector<std::pair<int, Algorithm>> refreshes(explored.begin() + 16, explored.end());
  ASSERT_EQ(refreshes.size(), 5u);
  for (size_t k = 0; k < refreshes.size(); ++k) {
    EXPECT_EQ(refreshes[k].first, 384 + 128 * static_cast<int>(k));
    if (k > 0) {
      EXPECT_NE(refreshes[k].second, refreshes[k - 1].second) << "in turn";
    }
  }
  // Another size bucket has no data for the alternatives yet: it explores on its own schedule.
  int other = 0;
  for (int i = 1; i <= 16; ++i) other += m.choose(size_t{1} << 16, 4) != Algorithm::kTree;
  EXPECT_EQ(other, 1);
}

TEST(CostModel, HopelessAlternativesAreNotExplored) {
  // Fits at every size say ring and native take about 3x tree at 1 KiB: once fitted, neither
  // is explored or refreshed there, whatever the bucket's own sample count.
  CostModel m;  // explore_max_ratio 2
  const AlphaBeta link{5 * kUs, 0.2 * kPerGBs};
  feed(m, Algorithm::kTree, link, 4);
  feed(m, Algorithm::kRing, link, 4);
  feed(m, Algorithm::kNative, link, 4);
  ASSERT_TRUE(m.fitted(Algorithm::kRing) && m.fitted(Algorithm::kTree));
  int off_best = 0;
  for (int i = 1; i <= 1000; ++i) off_best += m.choose(1024, 4) != Algorithm::kTree;
  EXPECT_EQ(off_best, 0);
  // At 64 MiB ring is the faster one and tree within 2x of it: tree still gets its samples.
  int tree = 0;
  const size_t big = size_t{64} << 20;
  for (int i = 1; i <= 480; ++i) {
    const Algorithm a = m.choose(big, 4);
    tree += a == Algorithm::kTree;
    m.observe(a, big, 4, truth(a, link, big, 4));
  }
  EXPECT_GT(tree, 0);
}

TEST(CostModel, RefreshRevisitsAChoiceMadeOnUnluckySamples) {
  CostModelOptions o;
  o.allowed = {false, true, true};  // ring and tree
  CostModel m(o);
  const size_t n = 4096;
  // Ring's first samples at this size are 3x slow (noise); afterwards both run at their truth,
  // where ring is the faster one. The refreshes bring ring's median back and the choice follows.
  const AlphaBeta link{5 * kUs, 0.2 * kPerGBs};
  auto ring_truth = [&](int seen) {
    double t = 0.5 * truth(Algorithm::kTree, link, n, 4);
    return seen < 8 ? 3 * truth(Algorithm::kTree, link, n, 4) : t;
  };
  int ring_seen = 0;
  Algorithm last = Algorithm::kTree;
  for (int i = 1; i <= 20000; ++i) {
    last = m.choose(n, 4);
    if (last == Algorithm::kRing) {
      m.observe(last, n, 4, ring_truth(ring_seen++));
    } else {
      m.observe(last, n, 4, truth(last, link, n, 4));
    }
  }
  EXPECT_EQ(Algorithm::kRing, m.choose(n, 4)) << "ring samples seen: " << ring_seen;
}

TEST(CostModel, ExplorationCanBeDisabledAndIsDeterministic) {
  CostModelOptions off;
  off.explore_every = 0;
  CostModel quiet(off);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(quiet.choose(1024, 4), Algorithm::kTree);

  CostModel a, b;
  for (int i = 0; i < 200; ++i) {
    const size_t n = size_t{1} << (i % 24);
    EXPECT_EQ(a.choose(n, 4), b.choose(n, 4)) << i;
  }
}

TEST(CostModel, OnlyAllowedAlgorithmsAreChosenOrExplored) {
  CostModelOptions o;
  o.allowed = {false, true, false};
  CostModel m(o);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(m.choose(size_t{1} << (i % 20), 4), Algorithm::kRing);
}

// Where measurements at one size disagree with the fitted line (MPI's own allreduce switches
// algorithms inside), choose() follows the measurements at that size and the line elsewhere.
// The fit is kept as running sums: after many turns of the window it must still equal a fit
// made from scratch over the window's samples.
TEST(CostModel, RunningFitEqualsAFreshFitOverTheWindow) {
  CostModelOptions o;
  o.window = 64;
  CostModel running(o), fresh(o);
  std::vector<std::pair<size_t, double>> seen;
  for (int i = 0; i < 1000; ++i) {
    const size_t n = size_t{1} << (i % 23);
    const AlphaBeta regime{(2 + i % 5) * kUs, (0.1 + 0.01 * (i % 7)) * kPerGBs};
    const double t = truth(Algorithm::kRing, regime, n, 3) * (1 + 0.05 * ((i * 37) % 11) / 11.0);
    running.observe(Algorithm::kRing, n, 3, t);
    seen.emplace_back(n, t);
  }
  for (size_t i = seen.size() - 64; i < seen.size(); ++i) {
    fresh.observe(Algorithm::kRing, seen[i].first, 3, seen[i].second);
  }
  ASSERT_TRUE(running.fitted(Algorithm::kRing));
  const AlphaBeta r = running.params(Algorithm::kRing), f = fresh.params(Algorithm::kRing);
  EXPECT_NEAR(r.alpha, f.alpha, f.alpha * 1e-6);
  EXPECT_NEAR(r.beta, f.beta, f.beta * 1e-6);
}

// The correction at a size follows that size's latest measurements, not its oldest.
TEST(CostModel, MeasuredCorrectionFollowsTheLatestSamplesAtASize) {
  CostModelOptions o;
  o.explore_every = 0;
  o.allowed = {false, true, true};
  CostModel m(o);
  const size_t n = 4096;
  for (int i = 0; i < 40; ++i) {  // ring slow at first, tree steady
    m.observe(Algorithm::kRing, n, 2, 200 * kUs);
    m.observe(Algorithm::kTree, n, 2, 100 * kUs);
  }
  ASSERT_EQ(Algorithm::kTree, m.choose(n, 2));
  for (int i = 0; i < 40; ++i) m.observe(Algorithm::kRing, n, 2, 50 * kUs);  // ring got fast
  EXPECT_EQ(Algorithm::kRing, m.choose(n, 2));
}

// A size's correction uses only samples still in the window, however few the size got since.
TEST(CostModel, MeasuredCorrectionIgnoresSamplesThatLeftTheWindow) {
  CostModelOptions o;
  o.explore_every = 0;
  o.window = 16;
  o.allowed = {false, true, true};
  CostModel m(o);
  const size_t n = 4096;
  for (int i = 0; i < 32; ++i) m.observe(Algorithm::kRing, n, 2, 400 * kUs);  // long ago: slow
  for (int i = 0; i < 16; ++i) m.observe(Algorithm::kRing, n << 10, 2, 10e-3);  // other size
  for (int i = 0; i < 8; ++i) {
    m.observe(Algorithm::kRing, n, 2, 50 * kUs);  // now: fast
    m.observe(Algorithm::kTree, n, 2, 100 * kUs);
  }
  EXPECT_EQ(Algorithm::kRing, m.choose(n, 2)) << "the 32 slow samples left the window";
}

TEST(CostModel, MeasurementsAtASizeOverrideTheLine) {
  CostModelOptions o;
  o.explore_every = 0;
  o.allowed = {false, true, true};  // ring and tree only
  CostModel m(o);
  const double a = 5e-6, b = 1.0 / 5e9;
  // Both lines fit exactly over many sizes: tree wins small messages.
  for (size_t bytes = 64; bytes <= (size_t{1} << 26); bytes *= 4) {
    m.observe(Algorithm::kRing, bytes, 4, 6 * a + 1.5 * bytes * b);
    m.observe(Algorithm::kTree, bytes, 4, 2 * (a + bytes * b));
  }
  const size_t n = 4096;
  ASSERT_EQ(Algorithm::kTree, m.choose(n, 4));
  // At 4 KiB, tree is measured 4x slower than its line predicts.
  // (as many samples as the correction needs: explore_min_samples)
  for (size_t i = 0; i < o.explore_min_samples; ++i) {
    m.observe(Algorithm::kTree, n, 4, 4 * 2 * (a + n * b));
    m.observe(Algorithm::kRing, n, 4, 6 * a + 1.5 * n * b);
  }
  EXPECT_EQ(Algorithm::kRing, m.choose(n, 4)) << "measured at this size";
  EXPECT_EQ(Algorithm::kTree, m.choose(64, 4)) << "other sizes keep following the line";
}

}  // namespace
}  // namespace quorum::coord
