// Helpers for multi-rank tests of bounded rounds (host and GPU): a deterministic straggler per
// round, sleeping it out, and the check of one-hot rounds: exactly once, within the staleness
// bound, counts adding up, replicas bitwise equal.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "quorum/quorum.h"
#include "tests/common/test_data.h"

namespace quorum::testing {

inline void sleep_ms(double ms) {
  std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(ms * 1000)));
}

// The same pseudo-random straggler on every rank: who is slow in round k.
inline int slow_rank(uint64_t seed, int round) {
  return static_cast<int>(mix(seed * 7919u + static_cast<uint64_t>(round)) %
                          static_cast<uint64_t>(quorum::size()));
}

// FNV-1a over bytes, chained through `h`.
inline uint64_t fnv(const void* p, size_t n, uint64_t h = 1469598103934665603ull) {
  auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

inline bool same_on_all_ranks(uint64_t value) {
  uint64_t lo = value, hi = value;
  MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  return lo == hi;
}

// Checks one-hot bounded rounds: rank r's gradient of round j (1 at index r*R + j) must be
// applied exactly once, with value 1, in a round k with j <= k <= j + staleness (`folded`, the
// flush, counts as round R); the counts add up to ranks x rounds; every rank holds bitwise the
// same results.
inline void expect_one_hot_exactly_once(const std::vector<std::vector<float>>& results,
                                        const std::vector<float>& folded, int64_t folded_count,
                                        const std::vector<int64_t>& counts, int staleness) {
  const int p = quorum::size(), R = static_cast<int>(results.size());
  for (int r = 0; r < p; ++r) {
    for (int j = 0; j < R; ++j) {
      const auto idx = static_cast<size_t>(r * R + j);
      int applied = 0, at = -1;
      for (int k = 0; k < R; ++k) {
        if (results[static_cast<size_t>(k)][idx] != 0.0f) {
          EXPECT_EQ(1.0f, results[static_cast<size_t>(k)][idx]);
          ++applied;
          at = k;
        }
      }
      if (folded[idx] != 0.0f) {
        EXPECT_EQ(1.0f, folded[idx]);
        ++applied;
        at = R;
      }
      ASSERT_EQ(1, applied) << "gradient of rank " << r << " round " << j;
      EXPECT_GE(at, j);
      EXPECT_LE(at - j, staleness) << "gradient of rank " << r << " round " << j;
    }
  }
  int64_t total = folded_count;
  for (int64_t c : counts) total += c;
  EXPECT_EQ(static_cast<int64_t>(p) * R, total) << "counts add up to ranks x rounds";
  uint64_t h = 0;
  for (const auto& res : results) h = fnv(res.data(), res.size() * sizeof(float), h);
  h = fnv(folded.data(), folded.size() * sizeof(float), h);
  EXPECT_TRUE(same_on_all_ranks(h)) << "replicas diverged";
}

}  // namespace quorum::testing
