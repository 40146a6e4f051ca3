#include "coordinator/cost_model.h"

#include <algorithm>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

namespace quorum::coord {
namespace {

// Below this relative determinant the two columns of the weighted design matrix are (nearly)
// parallel, e.g. every sample has the same size, and alpha cannot be told from beta.
constexpr double kMinRelativeDeterminant = 1e-6;

size_t index(Algorithm a) { return static_cast<size_t>(a); }

}  // namespace

std::string_view algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::kNative:
      return "native";
    case Algorithm::kRing:
      return "ring";
    case Algorithm::kTree:
      return "tree";
    case Algorithm::kHierarchical:
      return "hierarchical";
  }
  return "invalid-algorithm";
}

CostTerms cost_terms(Algorithm a, size_t bytes, int ranks) {
  if (ranks < 2) return {};
  const double p = ranks;
  const auto n = static_cast<double>(bytes);
  switch (a) {
    case Algorithm::kNative:
    case Algorithm::kRing:
    case Algorithm::kHierarchical:  // one host: a ring (its levels are modelled separately)
      return {2 * (p - 1), 2 * ((p - 1) / p) * n};
    case Algorithm::kTree: {
      const auto u = static_cast<unsigned>(ranks);
      // log2 of the largest power of two <= p, plus fold-in and fold-out when p is not one.
      const double steps = (std::bit_width(u) - 1) + (std::has_single_bit(u) ? 0 : 2);
      return {steps, steps * n};
    }
  }
  return {};
}

CostModel::CostModel(CostModelOptions options) : options_(options) {
  bool any = false;
  for (bool allowed : options_.allowed) any = any || allowed;
  if (!any || options_.window == 0) {
    std::fprintf(stderr, "quorum: CostModel needs an allowed algorithm and a non-empty window\n");
    std::abort();
  }
}

int CostModel::size_bucket(size_t bytes) { return static_cast<int>(std::bit_width(bytes)); }

void CostModel::observe(Algorithm a, size_t bytes, int ranks, double seconds) {
  if (ranks < 2 || !std::isfinite(seconds) || seconds <= 0) return;
  const size_t track = index(a);
  record(track, {bytes, ranks, seconds, tracks_[track].observed});
  if (a != Algorithm::kHierarchical) refit(track);  // predicted from its levels
}

void CostModel::observe_levels(size_t bytes, double intra_seconds, double inter_seconds) {
  const std::array<std::pair<Level, double>, 2> levels = {
      {{Level::kIntra, intra_seconds}, {Level::kInter, inter_seconds}}};
  for (const auto& [level, seconds] : levels) {
    const int ranks = level_ranks(level);
    if (ranks < 2 || !std::isfinite(seconds) || seconds <= 0) continue;
    const size_t track = level_track(level);
    record(track, {level_bytes(level, bytes), ranks, seconds, tracks_[track].observed});
    refit(track);
  }
}

int CostModel::level_ranks(Level level) const {
  return level == Level::kIntra ? options_.shape.ranks_per_host : options_.shape.hosts;
}

size_t CostModel::level_bytes(Level level, size_t bytes) const {
  return level == Level::kIntra
             ? bytes
             : bytes / static_cast<size_t>(std::max(1, options_.shape.ranks_per_host));
}

void CostModel::record(size_t index, const Sample& sample) {
  Track& track = tracks_[index];
  ++track.observed;
  if (std::optional<Sample> old = push_ring(track.window, options_.window, sample)) {
    --track.per_bucket[static_cast<size_t>(size_bucket(old->bytes))];
    add(track.sums, index, *old, -1);
  }
  ++track.per_bucket[static_cast<size_t>(size_bucket(sample.bytes))];
  add(track.sums, index, sample, +1);
  if (track.observed % options_.window == 0) {  // now and then exactly, so rounding cannot grow
    track.sums = {};
    for (const Sample& s : track.window.samples) add(track.sums, index, s, +1);
  }
  push_ring(track.recent[static_cast<size_t>(size_bucket(sample.bytes))], kBucketRing, sample);
}

CostTerms CostModel::track_terms(size_t track, size_t bytes, int ranks) {
  // A level's samples are rings over that level's ranks and bytes.
  const Algorithm a = track < kNumAlgorithms ? static_cast<Algorithm>(track) : Algorithm::kRing;
  return cost_terms(a, bytes, ranks);
}

std::optional<CostModel::Sample> CostModel::push_ring(Ring& ring, size_t cap, const Sample& s) {
  if (ring.samples.size() < cap) {
    ring.samples.push_back(s);
    return std::nullopt;
  }
  const Sample old = ring.samples[ring.next];
  ring.samples[ring.next] = s;
  ring.next = (ring.next + 1) % cap;
  return old;
}

void CostModel::add(Sums& sums, size_t track, const Sample& s, double sign) {
  // Minimise sum w (A alpha + B beta - t)^2 with w = 1/t^2, i.e. relative error: unweighted,
  // the largest transfers would decide alpha, which only the small ones can measure.
  const CostTerms c = track_terms(track, s.bytes, s.ranks);
  const double w = sign / (s.seconds * s.seconds);
  sums.aa += w * c.alpha_terms * c.alpha_terms;
  sums.ab += w * c.alpha_terms * c.beta_terms;
  sums.bb += w * c.beta_terms * c.beta_terms;
  sums.at += w * c.alpha_terms * s.seconds;
  sums.bt += w * c.beta_terms * s.seconds;
  sums.tt += w * s.seconds * s.seconds;
}

void CostModel::refit(size_t index) {
  Track& track = tracks_[index];
  track.fitted = false;
  if (track.window.samples.size() < options_.min_samples) return;
  const double saa = track.sums.aa, sab = track.sums.ab, sbb = track.sums.bb;
  const double sat = track.sums.at, sbt = track.sums.bt, stt = track.sums.tt;
  const double det = saa * sbb - sab * sab;
  if (!(saa > 0 && sbb > 0) || det <= kMinRelativeDeterminant * saa * sbb) return;
  AlphaBeta fit{(sbb * sat - sab * sbt) / det, (saa * sbt - sab * sat) / det};
  if (fit.alpha < 0 || fit.beta < 0) {
    // A negative cost is noise around a term too small to measure. With two unknowns the
    // non-negative optimum lies on an axis: take the better of beta alone and alpha alone.
    auto residual = [&](const AlphaBeta& f) {
      return stt - 2 * (f.alpha * sat + f.beta * sbt) + f.alpha * f.alpha * saa +
             2 * f.alpha * f.beta * sab + f.beta * f.beta * sbb;
    };
    const AlphaBeta beta_only{0, sbt / sbb};
    const AlphaBeta alpha_only{sat / saa, 0};
    fit = residual(beta_only) <= residual(alpha_only) ? beta_only : alpha_only;
  }
  if (!std::isfinite(fit.alpha) || !std::isfinite(fit.beta) || fit.alpha + fit.beta <= 0) return;
  track.fit = fit;
  track.fitted = true;
}

AlphaBeta CostModel::track_params(size_t track) const {
  const Track& t = tracks_[track];
  if (t.fitted) return t.fit;
  return track < kNumAlgorithms ? options_.priors[track]
                                : options_.level_priors[track - kNumAlgorithms];
}

AlphaBeta CostModel::params(Algorithm a) const {
  return a == Algorithm::kHierarchical ? level_params(Level::kInter) : track_params(index(a));
}

bool CostModel::fitted(Algorithm a) const {
  if (a == Algorithm::kHierarchical) {
    return level_fitted(Level::kIntra) && level_fitted(Level::kInter);
  }
  return tracks_[index(a)].fitted;
}

size_t CostModel::samples(Algorithm a) const { return tracks_[index(a)].window.samples.size(); }

AlphaBeta CostModel::level_params(Level level) const { return track_params(level_track(level)); }

bool CostModel::level_fitted(Level level) const { return tracks_[level_track(level)].fitted; }

double CostModel::predict_track(size_t track, size_t bytes, int ranks) const {
  const AlphaBeta ab = track_params(track);
  const CostTerms c = track_terms(track, bytes, ranks);
  return c.alpha_terms * ab.alpha + c.beta_terms * ab.beta;
}

double CostModel::predict_level(Level level, size_t bytes) const {
  return predict_track(level_track(level), level_bytes(level, bytes), level_ranks(level));
}

double CostModel::predict(Algorithm a, size_t bytes, int ranks) const {
  if (a == Algorithm::kHierarchical && options_.shape.hosts > 1) {
    return predict_level(Level::kIntra, bytes) + predict_level(Level::kInter, bytes);
  }
  return predict_track(index(a), bytes, ranks);
}

double CostModel::measured_ratio(Algorithm a, size_t bucket, int ranks) const {
  const Track& track = tracks_[static_cast<size_t>(a)];
  if (track.per_bucket[bucket] < options_.explore_min_samples) return 1.0;
  std::array<double, kBucketRing> ratios;
  size_t n = 0;
  // Only samples still in the window: a bucket's ring keeps its last samples however old.
  const uint64_t oldest = track.observed > options_.window ? track.observed - options_.window : 0;
  for (const Sample& s : track.recent[bucket].samples) {
    if (s.ranks != ranks || s.seq < oldest) continue;
    const double p = predict(a, s.bytes, s.ranks);
    if (p > 0) ratios[n++] = s.seconds / p;
  }
  if (n < std::min(options_.explore_min_samples, kBucketRing)) return 1.0;
  const auto end = ratios.begin() + static_cast<std::ptrdiff_t>(n);
  std::nth_element(ratios.begin(), ratios.begin() + static_cast<std::ptrdiff_t>(n / 2), end);
  return ratios[n / 2];  // the median: one slow outlier does not flip the choice
}

Algorithm CostModel::choose(size_t bytes, int ranks) const {
  const auto bucket = static_cast<size_t>(size_bucket(bytes));
  const uint32_t decision = ++decisions_[bucket];
  int best = -1;
  double best_seconds = std::numeric_limits<double>::infinity();
  std::array<double, kNumAlgorithms> seconds{};
  for (int i = 0; i < kNumAlgorithms; ++i) {
    if (!options_.allowed[static_cast<size_t>(i)]) continue;
    // The model, corrected by what was measured at this size: an alpha-beta line cannot follow
    // every switch inside MPI's own allreduce, the measurements can.
    const double t = predict(static_cast<Algorithm>(i), bytes, ranks) *
                     measured_ratio(static_cast<Algorithm>(i), bucket, ranks);
    seconds[static_cast<size_t>(i)] = t;
    if (best < 0 || t < best_seconds) {
      best = i;
      best_seconds = t;
    }
  }
  if (options_.explore_every == 0 || decision % options_.explore_every != 0) {
    return static_cast<Algorithm>(best);
  }
  // Exploration: the least-observed allowed alternative in this bucket, if it is short of
  // samples. Bounded to one decision in explore_every, and to buckets that lack data.
  int pick = best;
  uint32_t fewest = std::numeric_limits<uint32_t>::max();
  std::vector<int> alternatives;
  // Hopeless alternatives (both fits agree it is far slower here) are not worth a sample.
  auto hopeless = [&](int i) {
    return options_.explore_max_ratio > 0 && fitted(static_cast<Algorithm>(i)) &&
           fitted(static_cast<Algorithm>(best)) &&
           seconds[static_cast<size_t>(i)] > options_.explore_max_ratio * best_seconds;
  };
  for (int i = 0; i < kNumAlgorithms; ++i) {
    const auto ui = static_cast<size_t>(i);
    if (!options_.allowed[ui] || i == best || hopeless(i)) continue;
    alternatives.push_back(i);
    const uint32_t have = tracks_[ui].per_bucket[bucket];
    if (have < options_.explore_min_samples && have < fewest) {
      pick = i;
      fewest = have;
    }
  }
  // Every alternative has its samples: now and then one of them, in turn, gets a fresh one.
  if (pick == best && !alternatives.empty() && options_.refresh_every != 0 &&
      decision % options_.refresh_every == 0) {
    pick = alternatives[(decision / options_.refresh_every) % alternatives.size()];
  }
  return static_cast<Algorithm>(pick);
}

std::optional<size_t> CostModel::crossover_bytes(Algorithm faster, Algorithm than,
                                                 int ranks) const {
  if (ranks < 2) return std::nullopt;
  auto wins = [&](size_t n) { return predict(faster, n, ranks) < predict(than, n, ranks); };
  // Both predictions are lines in n (the inter-host level's n / L is one up to rounding):
  // faster - than = gap - n * gain, gain being what `faster` saves per byte.
  constexpr double kProbe = 0x1p30;
  const double gap = predict(faster, 0, ranks) - predict(than, 0, ranks);
  const double gain =
      (predict(than, size_t{1} << 30, ranks) - predict(faster, size_t{1} << 30, ranks) + gap) /
      kProbe;
  if (gap < 0) return 0;
  if (gain <= 0) return std::nullopt;
  const double at = std::floor(gap / gain) + 1;
  if (!(at < 0x1p62)) return std::nullopt;
  auto n = static_cast<size_t>(at);
  // The closed form can be off by rounding at the boundary; settle it against predict().
  for (int i = 0; i < 4 && n > 0 && wins(n - 1); ++i) --n;
  for (int i = 0; i < 4 && !wins(n); ++i) ++n;
  return n;
}

}  // namespace quorum::coord
