// Checks that every rank holds the same bytes: an FNV-1a hash of them, gathered over MPI.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace quorum::testing {

inline uint64_t fnv1a(const void* p, size_t bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < bytes; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

// Every rank's `bytes` at `p` hash alike (collective over `comm`).
inline void expect_identical_on_all_ranks(MPI_Comm comm, const void* p, size_t bytes,
                                          const std::string& what) {
  uint64_t mine = fnv1a(p, bytes);
  int size = 1;
  MPI_Comm_size(comm, &size);
  std::vector<uint64_t> all(static_cast<size_t>(size));
  ASSERT_EQ(MPI_SUCCESS, MPI_Allgather(&mine, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, comm));
  for (size_t r = 0; r < all.size(); ++r) EXPECT_EQ(all[0], all[r]) << what << " rank " << r;
}

}  // namespace quorum::testing
