// The data-plane interface the engine drives. One Backend per device kind; every call is a
// collective: all ranks call the same operations in the same order (the coordinator's plan
// sequence guarantees it). Calls come from the engine thread only. While a collective is in
// flight the backend calls the progress hook between polls, so the engine can keep negotiating.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "quorum/types.h"

namespace quorum::ops {

// How an allreduce is carried out: the library's own call, a ring (reduce-scatter + allgather)
// or a tree (recursive doubling) on point-to-point messages, or hierarchical (inside each host,
// then across hosts: hierarchical_allreduce.h).
enum class Algorithm : uint8_t { kNative = 0, kRing, kTree, kHierarchical };
inline constexpr int kNumAlgorithms = 4;

// When each level of a hierarchical allreduce ran, on steady_clock nanoseconds (the clock of
// Timeline::now_ns): the intra-host phase before the network, the inter-host phase, and the
// intra-host phase after it. A rank that takes no part in the inter-host phase (an uneven
// host's non-leader) has an empty one. Pipelined (uniform hosts), the inter-host phase runs from
// the first chunk's crossing to the last one's, and the host's steps that overlap it count as
// inter-host: intra-host is what the pipeline leaves exposed.
struct LevelTimes {
  int64_t start_ns = 0;
  int64_t inter_start_ns = 0;
  int64_t inter_end_ns = 0;
  int64_t end_ns = 0;

  int64_t intra_ns() const { return (inter_start_ns - start_ns) + (end_ns - inter_end_ns); }
  int64_t inter_ns() const { return inter_end_ns - inter_start_ns; }
  double intra_seconds() const { return static_cast<double>(intra_ns()) * 1e-9; }
  double inter_seconds() const { return static_cast<double>(inter_ns()) * 1e-9; }
};

class Backend {
 public:
  using ProgressHook = std::function<void()>;
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // In-place allreduce of `count` elements of `t` (a wire dtype: f16/bf16 only for compressed
  // plans, which a backend may run on ring or tree only). Average is the sum divided by the rank
  // count (ops::divide: integers truncate), bitwise alike on every rank.
  virtual Status allreduce(void* buf, size_t count, DataType t, ReduceOp op,
                           Algorithm algorithm = Algorithm::kNative) = 0;

  // Root's `bytes` bytes at `buf` land in every rank's `buf`.
  virtual Status broadcast(void* buf, size_t bytes, int root) = 0;

  // Rank r's `bytes_per_rank[r]` bytes from `send` land in every rank's `recv`, in rank order.
  virtual Status allgather(const void* send, void* recv,
                           const std::vector<size_t>& bytes_per_rank) = 0;

  // The levels of the last allreduce if it ran hierarchically, else nullptr.
  virtual const LevelTimes* last_levels() const { return nullptr; }

  void set_progress_hook(ProgressHook hook) { progress_ = std::move(hook); }

 protected:
  void progress() {
    if (progress_) progress_();
  }

 private:
  ProgressHook progress_;
};

}  // namespace quorum::ops
