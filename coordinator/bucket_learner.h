// Learns the order in which a training loop's tensors become ready, and cuts that order into
// buckets of about `bucket_bytes` (consecutive tensors with the same op, dtype and device); a
// tensor larger than `max_tensor_bytes` is a bucket of its own (it is never fused).
// The coordinator releases a learned bucket the moment all of its members are ready instead of
// holding tensors for the cycle time. An iteration ends when a tensor becomes ready a second
// time; the layout is rebuilt from the iteration just finished, so it follows changes in the
// model or the order. Pure logic; single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "coordinator/readiness_table.h"

namespace quorum::coord {

class BucketLearner {
 public:
  explicit BucketLearner(size_t bucket_bytes, size_t max_tensor_bytes = SIZE_MAX)
      : bucket_bytes_(bucket_bytes), max_tensor_bytes_(max_tensor_bytes) {}

  // A tensor's round completed (all ranks submitted it). Allreduces only.
  void observe_ready(const ReadyTensor& t);
  // A tensor was sent out in a plan during this iteration.
  void observe_planned(uint32_t id) { planned_.insert(id); }
  // The coordinator evicted these ids (they may come back naming other tensors): they leave the
  // iteration being observed and the learned layout.
  void forget(const std::unordered_set<uint32_t>& ids);

  // The learned bucket of `id`, or -1 when there is no layout for it yet.
  int bucket_of(uint32_t id) const;
  // True when every member of `id`'s bucket is either in `ready` or already planned in this
  // iteration: the bucket cannot grow any more.
  bool complete(uint32_t id, const std::unordered_set<uint32_t>& ready) const;

  void set_bucket_bytes(size_t b) { bucket_bytes_ = b; }
  size_t bucket_bytes() const { return bucket_bytes_; }
  size_t buckets() const { return members_.size(); }
  uint64_t iterations() const { return iterations_; }

 private:
  struct Seen {
    uint32_t id;
    size_t bytes;
    uint32_t key;  // op, dtype and device packed: only equal keys share a bucket
  };
  void rebuild();

  size_t bucket_bytes_;
  size_t max_tensor_bytes_;
  std::vector<Seen> current_;                  // this iteration's ready order
  std::unordered_set<uint32_t> in_current_;
  std::unordered_set<uint32_t> planned_;       // planned during this iteration
  std::unordered_map<uint32_t, int> bucket_;   // learned layout
  std::vector<std::vector<uint32_t>> members_;
  uint64_t iterations_ = 0;
};

}  // namespace quorum::coord
