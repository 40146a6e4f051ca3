// An alpha-beta cost model per allreduce algorithm, fitted from timed collectives, and the
// algorithm choice it implies (QUORUM_ALGO=auto). time = alpha_terms * a + beta_terms * b, where
// a is seconds per message and b seconds per byte:
//   ring    2(p-1) a + 2((p-1)/p) n b          (reduce-scatter + allgather)
//   tree    s (a + n b), s = log2(p') + (p != p' ? 2 : 0), p' the largest power of two <= p
//           (recursive doubling plus the fold-in and fold-out of the extra ranks)
//   native  like ring until its own fit says otherwise.
//   hierarchical (a job on H hosts of L ranks each) the sum of two levels, each fitted on its own
//           from the phase timings hierarchical_allreduce reports:
//             intra-host  ring over L ranks of n bytes:      2(L-1) a_i + 2((L-1)/L) n b_i
//             inter-host  ring over H ranks of n/L bytes:    2(H-1) a_x + 2((H-1)/H) (n/L) b_x
//           (uneven hosts run a leaders' ring of all n bytes; the model keeps L = the largest
//           host, which under-predicts their network share: auto measures and corrects).
// Each algorithm starts from a prior and is refitted by weighted least squares over its most
// recent observations (running sums: O(1) per observation). choose() corrects each prediction
// by the median measured/predicted ratio of the last few observations at that size (a small
// ring per size bucket), so a decision costs well under a microsecond: it sits on the path of
// every plan. Pure logic; runs on rank 0's coordinator thread. Not thread-safe: one thread owns
// a CostModel, including its const methods (choose() counts decisions).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "ops/backend.h"

namespace quorum::coord {

using ops::Algorithm;
using ops::kNumAlgorithms;

std::string_view algorithm_name(Algorithm a);

// Seconds per message and seconds per byte.
struct AlphaBeta {
  double alpha = 0;
  double beta = 0;
};

// The multipliers of alpha and beta for one allreduce of `bytes` over `ranks` (both 0 for one
// rank: nothing moves).
struct CostTerms {
  double alpha_terms = 0;
  double beta_terms = 0;
};
CostTerms cost_terms(Algorithm a, size_t bytes, int ranks);

// The two levels of a hierarchical allreduce.
enum class Level : uint8_t { kIntra = 0, kInter };

// How the job's ranks sit on hosts: `hosts` hosts of at most `ranks_per_host` ranks.
struct HostShape {
  int hosts = 1;
  int ranks_per_host = 1;
};

struct CostModelOptions {
  // Shared memory: 5 us per message, 5 GB/s. Indexed by Algorithm; hierarchical's entry is
  // unused (its levels have their own priors).
  std::array<AlphaBeta, kNumAlgorithms> priors = {
      {{5e-6, 1 / 5e9}, {5e-6, 1 / 5e9}, {5e-6, 1 / 5e9}, {5e-6, 1 / 5e9}}};
  // Indexed by Level.
  std::array<AlphaBeta, 2> level_priors = {{{5e-6, 1 / 5e9}, {5e-6, 1 / 5e9}}};
  HostShape shape;
  // What choose() may return, indexed by Algorithm. At least one must be true. Hierarchical is
  // off unless the job spans hosts (the coordinator turns it on).
  std::array<bool, kNumAlgorithms> allowed = {true, true, true, false};
  // Each algorithm is fitted over its last `window` observations.
  size_t window = 256;
  // Fewer usable observations than this keep the prior.
  size_t min_samples = 4;
  // Every `explore_every`-th decision within a size bucket (sizes in [2^(k-1), 2^k)) goes to an
  // allowed algorithm that has fewer than `explore_min_samples` observations in that bucket, if
  // any, instead of the predicted-fastest. 0 disables exploration (refreshes included).
  uint32_t explore_every = 16;
  size_t explore_min_samples = 8;
  // Once every alternative has its samples, every `refresh_every`-th decision in a bucket (a
  // multiple of explore_every) still goes to one of them, in turn, so that a choice made on a
  // few unlucky measurements is revisited as new ones come in. 0 disables.
  uint32_t refresh_every = 128;
  // Neither exploration nor refreshes go to an alternative that its own fit (and the fastest
  // one's) already predict more than this many times slower at this size: across emulated
  // hosts tree ran at 2.2x ring, and sampling it 8 times per size class cost ResNet-50 whole
  // steps. 0 explores every alternative.
  double explore_max_ratio = 2.0;
};

class CostModel {
 public:
  // Aborts (programmer error) if no algorithm is allowed or the window is 0.
  explicit CostModel(CostModelOptions options = {});

  // Records that `a` reduced `bytes` over `ranks` in `seconds` and refits `a`. Observations
  // that carry no information (ranks < 2, seconds not finite or not positive) are ignored.
  void observe(Algorithm a, size_t bytes, int ranks, double seconds);

  // Records the two levels of one hierarchical allreduce of `bytes` (its total time goes to
  // observe(kHierarchical, ...)). Refits both levels.
  void observe_levels(size_t bytes, double intra_seconds, double inter_seconds);

  // Predicted seconds for `a` (its fit, or its prior while it has none). Hierarchical: the sum
  // of its levels over options().shape (`ranks` is not used).
  double predict(Algorithm a, size_t bytes, int ranks) const;
  // Predicted seconds of one level of a hierarchical allreduce of `bytes`.
  double predict_level(Level level, size_t bytes) const;

  // The predicted-fastest allowed algorithm (ties go to the lower enum value), except for the
  // exploration decisions described in CostModelOptions. Deterministic given the sequence of
  // calls.
  Algorithm choose(size_t bytes, int ranks) const;

  // Smallest message size at which `faster` is predicted strictly faster than `than` over
  // `ranks`; nullopt if it never is. For reports. The one-argument form is ring against tree.
  std::optional<size_t> crossover_bytes(Algorithm faster, Algorithm than, int ranks) const;
  std::optional<size_t> crossover_bytes(int ranks) const {
    return crossover_bytes(Algorithm::kRing, Algorithm::kTree, ranks);
  }

  // The coefficients predict() uses for `a`, whether they come from a fit, and how many
  // observations the fit may use (at most the window). Hierarchical: the inter-host level's
  // coefficients (the network is what its cost turns on), fitted once both levels are, and its
  // count of timed allreduces.
  AlphaBeta params(Algorithm a) const;
  bool fitted(Algorithm a) const;
  size_t samples(Algorithm a) const;
  AlphaBeta level_params(Level level) const;
  bool level_fitted(Level level) const;

  const CostModelOptions& options() const { return options_; }

  // The exploration bucket of a message size: 0 for 0 bytes, else floor(log2(bytes)) + 1.
  static int size_bucket(size_t bytes);

 private:
  static constexpr int kNumBuckets = 65;

  struct Sample {
    size_t bytes = 0;
    int ranks = 0;
    double seconds = 0;
    uint64_t seq = 0;  // the track's observation number
  };
  // The weighted least-squares sums over a track's window (w = 1/t^2), kept as samples come
  // and go and recomputed from the window now and then so rounding cannot accumulate.
  struct Sums {
    double aa = 0, ab = 0, bb = 0, at = 0, bt = 0, tt = 0;
  };
  // The last samples, at most a capacity of them.
  struct Ring {
    std::vector<Sample> samples;
    size_t next = 0;  // where the next sample goes once the ring is full
  };
  static constexpr size_t kBucketRing = 32;
  struct Track {
    Ring window;  // at most options_.window samples: what the fit uses
    AlphaBeta fit;
    bool fitted = false;
    Sums sums;
    uint64_t observed = 0;  // observations so far (the next sample's seq)
    std::array<uint32_t, kNumBuckets> per_bucket{};  // samples in the window, by size bucket
    std::array<Ring, kNumBuckets> recent;  // the last kBucketRing samples of each size bucket
  };

  // Adds `s` to `ring` (capacity `cap`); returns the sample it replaced, if the ring was full.
  // Tracks 0 .. kNumAlgorithms-1 are the algorithms' (hierarchical's holds its total times, for
  // exploration and the measured ratio, and is never fitted itself); then one per Level, whose
  // samples are ring samples over that level's ranks and bytes.
  static constexpr size_t kNumTracks = kNumAlgorithms + 2;
  static size_t level_track(Level level) { return kNumAlgorithms + static_cast<size_t>(level); }
  // The ranks and bytes one level of a hierarchical allreduce of `bytes` spans.
  int level_ranks(Level level) const;
  size_t level_bytes(Level level, size_t bytes) const;

  static std::optional<Sample> push_ring(Ring& ring, size_t cap, const Sample& s);
  static CostTerms track_terms(size_t track, size_t bytes, int ranks);
  static void add(Sums& sums, size_t track, const Sample& s, double sign);
  void record(size_t track, const Sample& s);
  void refit(size_t track);
  AlphaBeta track_params(size_t track) const;
  double predict_track(size_t track, size_t bytes, int ranks) const;
  // Median of measured / predicted time over `a`'s most recent samples in this size bucket
  // (1 when it has fewer than explore_min_samples in the window).
  double measured_ratio(Algorithm a, size_t bucket, int ranks) const;

  CostModelOptions options_;
  std::array<Track, kNumTracks> tracks_;
  mutable std::array<uint32_t, kNumBuckets> decisions_{};  // choose() calls, by size bucket
};

}  // namespace quorum::coord
