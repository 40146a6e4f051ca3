// The data-plane interface the engine drives. One Backend per device kind; every call is a
// collective: all ranks call the same operations in the same order (the coordinator's plan
// sequence guarantees it). Calls come from the engine thread only. While a collective is in
// flight the backend calls the progress hook between polls, so the engine can keep negotiating.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

#include "quorum/types.h"

namespace quorum::ops {

// How an allreduce is carried out: the library's own call, a ring (reduce-scatter + allgather)
// or a tree (recursive doubling) on point-to-point messages.
enum class Algorithm : uint8_t { kNative = 0, kRing, kTree };
inline constexpr int kNumAlgorithms = 3;

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

  void set_progress_hook(ProgressHook hook) { progress_ = std::move(hook); }

 protected:
  void progress() {
    if (progress_) progress_();
  }

 private:
  ProgressHook progress_;
};

}  // namespace quorum::ops
