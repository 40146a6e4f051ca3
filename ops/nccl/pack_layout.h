// Index math of the batched pack/unpack kernels, shared by the CUDA code and the CPU unit tests.
// A fused buffer holds every part (tensor) back to back in the wire dtype, then, when a plan is
// counted, one f32 count slot per part at a 16-byte aligned offset. The kernels cut every part
// into chunks of kChunkElements; one thread block handles one chunk and finds its part by a
// binary search over the parts' first-chunk prefix. Pure functions; any thread; no CUDA needed.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define QUORUM_HD __host__ __device__
#else
#define QUORUM_HD
#endif

namespace quorum::ops::nccl {

// Elements one thread block packs or unpacks; a multiple of the block size times the unroll.
inline constexpr uint64_t kChunkElements = 8192;
inline constexpr unsigned kBlockThreads = 256;
inline constexpr unsigned kUnroll = 8;
static_assert(kChunkElements % (kBlockThreads * kUnroll) == 0, "chunks are whole block sweeps");

// One part of a fused buffer as the kernels see it (trivially copyable; the table lives in
// device memory). Pointers are device pointers on the plan's device.
struct PackEntry {
  const void* src;      // pack: input in the tensor dtype; null contributes zeros
  const void* carry;    // pack: late gradients in the accumulate dtype, added to src; or null
  void* dst;            // unpack: output in the tensor dtype; or null
  void* keep;           // unpack: a second copy of the result (tensor dtype); or null
  uint64_t elements;
  uint64_t offset;      // first element of this part in the fused buffer
  uint64_t first_chunk;  // chunks of all earlier parts
  float count;          // pack: gradients this part contributes (written to its count slot)
  uint32_t pad_;
};

QUORUM_HD inline uint64_t chunks_of(uint64_t elements) {
  return (elements + kChunkElements - 1) / kChunkElements;
}

QUORUM_HD inline uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// Byte offset of the count slots after `total` data elements of `wire_bytes` each.
QUORUM_HD inline uint64_t count_slots_offset(uint64_t total, uint64_t wire_bytes) {
  return align_up(total * wire_bytes, 16);
}

// Bytes of a fused buffer: the data and, when counted, `parts` f32 count slots.
QUORUM_HD inline uint64_t fused_bytes(uint64_t total, uint64_t wire_bytes, uint64_t parts,
                                      bool counted) {
  return counted ? count_slots_offset(total, wire_bytes) + parts * sizeof(float)
                 : total * wire_bytes;
}

// The part holding global chunk `chunk` (< total chunks): the last entry whose first_chunk is
// at most `chunk`. Entries without elements share the next entry's first_chunk and are never
// chosen, because the search takes the last of equal keys.
QUORUM_HD inline int locate_part(const PackEntry* entries, int n, uint64_t chunk) {
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    int mid = lo + (hi - lo + 1) / 2;
    if (entries[mid].first_chunk <= chunk) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// Element range [begin, end) of part `e` that global chunk `chunk` covers.
struct ChunkRange {
  uint64_t begin;
  uint64_t end;
};
QUORUM_HD inline ChunkRange chunk_range(const PackEntry& e, uint64_t chunk) {
  uint64_t begin = (chunk - e.first_chunk) * kChunkElements;
  uint64_t end = begin + kChunkElements < e.elements ? begin + kChunkElements : e.elements;
  return {begin, end};
}

// Fills offset and first_chunk of `n` entries whose elements are set; returns the total chunk
// count, and the total element count through `total_elements`.
inline uint64_t lay_out(PackEntry* entries, int n, uint64_t* total_elements) {
  uint64_t offset = 0, chunk = 0;
  for (int k = 0; k < n; ++k) {
    entries[k].offset = offset;
    entries[k].first_chunk = chunk;
    offset += entries[k].elements;
    chunk += chunks_of(entries[k].elements);
  }
  *total_elements = offset;
  return chunk;
}

}  // namespace quorum::ops::nccl
