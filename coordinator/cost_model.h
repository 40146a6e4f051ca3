// An alpha-beta cost model per allreduce algorithm, fitted from timed collectives, and the
// algorithm choice it implies (QUORUM_ALGO=auto). time = alpha_terms * a + beta_terms * b, where
// a is seconds per message and b seconds per byte:
//   ring    2(p-1) a + 2((p-1)/p) n b          (reduce-scatter + allgather)
//   tree    s (a + n b), s = log2(p') + (p != p' ? 2 : 0), p' the largest power of two <= p
//           (recursive doubling plus the fold-in and fold-out of the extra ranks)
//   native  like ring until its own fit says otherwise.
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

struct CostModelOptions {
  // Shared memory: 5 us per message, 5 GB/s. Indexed by Algorithm.
  std::array<AlphaBeta, kNumAlgorithms> priors = {
      {{5e-6, 1 / 5e9}, {5e-6, 1 / 5e9}, {5e-6, 1 / 5e9}}};
  // What choose() may return, indexed by Algorithm. At least one must be true.
  std::array<bool, kNumAlgorithms> allowed = {true, true, true};
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
};

class CostModel {
 public:
  // Aborts (programmer error) if no algorithm is allowed or the window is 0.
  explicit CostModel(CostModelOptions options = {});

  // Records that `a` reduced `bytes` over `ranks` in `seconds` and refits `a`. Observations
  // that carry no information (ranks < 2, seconds not finite or not positive) are ignored.
  void observe(Algorithm a, size_t bytes, int ranks, double seconds);

  // Predicted seconds for `a` (its fit, or its prior while it has none).
  double predict(Algorithm a, size_t bytes, int ranks) const;

  // The predicted-fastest allowed algorithm (ties go to the lower enum value), except for the
  // exploration decisions described in CostModelOptions. Deterministic given the sequence of
  // calls.
  Algorithm choose(size_t bytes, int ranks) const;

  // Smallest message size at which ring is predicted strictly faster than tree over `ranks`;
  // nullopt if it never is. For reports.
  std::optional<size_t> crossover_bytes(int ranks) const;

  // The coefficients predict() uses for `a`, whether they come from a fit, and how many
  // observations the fit may use (at most the window).
  AlphaBeta params(Algorithm a) const;
  bool fitted(Algorithm a) const;
  size_t samples(Algorithm a) const;

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
  static std::optional<Sample> push_ring(Ring& ring, size_t cap, const Sample& s);
  static void add(Sums& sums, Algorithm a, const Sample& s, double sign);
  void refit(Algorithm a);
  // Median of measured / predicted time over `a`'s most recent samples in this size bucket
  // (1 when it has fewer than explore_min_samples in the window).
  double measured_ratio(Algorithm a, size_t bucket, int ranks) const;

  CostModelOptions options_;
  std::array<Track, kNumAlgorithms> tracks_;
  mutable std::array<uint32_t, kNumBuckets> decisions_{};  // choose() calls, by size bucket
};

}  // namespace quorum::coord
