// CPU checks of the device fusion path's index math (ops/nccl/pack_layout.h) and dtype rules:
// the same inline functions the CUDA kernels run, swept here block by block and thread by
// thread as the kernels do, so a layout bug shows up on machines without a GPU.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "ops/nccl/device_dtypes.h"
#include "ops/nccl/pack_layout.h"

namespace quorum::ops::nccl {
namespace {

std::vector<PackEntry> parts_of(const std::vector<uint64_t>& sizes) {
  std::vector<PackEntry> e(sizes.size());
  for (size_t k = 0; k < sizes.size(); ++k) e[k].elements = sizes[k];
  return e;
}

// Visits every (part, element) the kernels would, in their loop order; counts visits per part.
std::vector<std::vector<uint8_t>> sweep(const std::vector<PackEntry>& e, uint64_t chunks) {
  std::vector<std::vector<uint8_t>> seen(e.size());
  for (size_t k = 0; k < e.size(); ++k) seen[k].assign(e[k].elements, 0);
  const int n = static_cast<int>(e.size());
  for (uint64_t block = 0; block < chunks; ++block) {
    const auto k = static_cast<size_t>(locate_part(e.data(), n, block));
    const ChunkRange r = chunk_range(e[k], block);
    EXPECT_LT(r.begin, r.end) << "block " << block << " has no work";
    EXPECT_LE(r.end, e[k].elements);
    for (unsigned t = 0; t < kBlockThreads; ++t) {
      for (uint64_t base = r.begin + t; base < r.end; base += kBlockThreads * kUnroll) {
        for (unsigned u = 0; u < kUnroll; ++u) {
          const uint64_t i = base + u * kBlockThreads;
          if (i < r.end) seen[k][i]++;
        }
      }
    }
  }
  return seen;
}

void expect_exact_cover(const std::vector<uint64_t>& sizes) {
  std::vector<PackEntry> e = parts_of(sizes);
  uint64_t total = 0;
  const uint64_t chunks = lay_out(e.data(), static_cast<int>(e.size()), &total);
  uint64_t want_total = 0, want_chunks = 0;
  for (size_t k = 0; k < sizes.size(); ++k) {
    EXPECT_EQ(e[k].offset, want_total) << "part " << k;
    EXPECT_EQ(e[k].first_chunk, want_chunks) << "part " << k;
    want_total += sizes[k];
    want_chunks += (sizes[k] + kChunkElements - 1) / kChunkElements;
  }
  EXPECT_EQ(total, want_total);
  ASSERT_EQ(chunks, want_chunks);
  auto seen = sweep(e, chunks);
  for (size_t k = 0; k < sizes.size(); ++k) {
    for (uint64_t i = 0; i < sizes[k]; ++i) {
      ASSERT_EQ(seen[k][i], 1) << "part " << k << " element " << i;
    }
  }
  // Parts are back to back in the fused buffer, so covering each part once covers it once.
  for (size_t k = 0; k + 1 < sizes.size(); ++k) {
    EXPECT_EQ(e[k].offset + e[k].elements, e[k + 1].offset);
  }
}

TEST(PackLayout, CoversEveryElementOnce) {
  expect_exact_cover({1});
  expect_exact_cover({kChunkElements});
  expect_exact_cover({kChunkElements + 1, 3, kChunkElements - 1});
  expect_exact_cover({0, 5, 0, 0, 2 * kChunkElements + 7, 0});
  expect_exact_cover({1009, 40013, 0, 1});
}

TEST(PackLayout, RandomPartSizes) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 30; ++trial) {
    std::vector<uint64_t> sizes(1 + rng() % 40);
    for (uint64_t& s : sizes) {
      switch (rng() % 4) {
        case 0: s = 0; break;
        case 1: s = rng() % 16; break;
        case 2: s = rng() % (3 * kChunkElements); break;
        default: s = kChunkElements * (1 + rng() % 3) + rng() % 2; break;
      }
    }
    expect_exact_cover(sizes);
  }
}

TEST(PackLayout, EmptyPartsAreNeverChosen) {
  std::vector<PackEntry> e = parts_of({0, 0, 10, 0, 0, 10, 0});
  uint64_t total = 0;
  const uint64_t chunks = lay_out(e.data(), static_cast<int>(e.size()), &total);
  ASSERT_EQ(chunks, 2u);
  EXPECT_EQ(locate_part(e.data(), static_cast<int>(e.size()), 0), 2);
  EXPECT_EQ(locate_part(e.data(), static_cast<int>(e.size()), 1), 5);
}

TEST(PackLayout, NothingToPack) {
  std::vector<PackEntry> e = parts_of({0, 0});
  uint64_t total = 1;
  EXPECT_EQ(lay_out(e.data(), 2, &total), 0u);
  EXPECT_EQ(total, 0u);
  // Counted: the count slots still travel (the kernel launches one block to write them).
  EXPECT_EQ(fused_bytes(0, 4, 2, true), 2 * sizeof(float));
  EXPECT_EQ(fused_bytes(0, 4, 2, false), 0u);
}

TEST(PackLayout, CountSlotsAreAlignedAfterTheData) {
  for (uint64_t total : {0ull, 1ull, 3ull, 7ull, 8ull, 1009ull}) {
    for (uint64_t wire : {1ull, 2ull, 4ull, 8ull}) {
      const uint64_t at = count_slots_offset(total, wire);
      EXPECT_GE(at, total * wire);
      EXPECT_LT(at, total * wire + 16);
      EXPECT_EQ(at % 16, 0u);
      EXPECT_EQ(fused_bytes(total, wire, 5, true), at + 5 * sizeof(float));
      EXPECT_EQ(fused_bytes(total, wire, 5, false), total * wire);
    }
  }
}

TEST(PackLayout, EntryIsCompactAndTrivial) {
  static_assert(std::is_trivially_copyable_v<PackEntry>);
  EXPECT_EQ(sizeof(PackEntry), 64u);
}

TEST(DeviceDtypes, WireAndAccumulate) {
  using enum DataType;
  // No compression: f16/bf16 sum in f32, as on the host path; the rest travel as themselves.
  EXPECT_EQ(device_wire_dtype_for(kF16, kF32), kF32);
  EXPECT_EQ(device_wire_dtype_for(kBF16, kF32), kF32);
  EXPECT_EQ(device_wire_dtype_for(kF32, kF32), kF32);
  EXPECT_EQ(device_wire_dtype_for(kF64, kF32), kF64);
  for (DataType c : {kF16, kBF16}) {
    for (DataType t : {kF16, kBF16, kF32, kF64}) EXPECT_EQ(device_wire_dtype_for(t, c), c);
    for (DataType t : {kI32, kI64, kU8}) EXPECT_EQ(device_wire_dtype_for(t, c), t);
  }
  EXPECT_EQ(device_accumulate_dtype(kF16), kF32);
  EXPECT_EQ(device_accumulate_dtype(kBF16), kF32);
  for (DataType t : {kF32, kF64, kI32, kI64, kU8}) EXPECT_EQ(device_accumulate_dtype(t), t);
}

}  // namespace
}  // namespace quorum::ops::nccl
