// The coordinator's id cache: names get small ids that ranks then announce instead of full
// descriptions; past QUORUM_CACHE_CAPACITY the least recently used idle ids are evicted,
// acknowledged by every rank, and only then reused.
#include <algorithm>
#include <limits>
#include <optional>
#include <unordered_set>

#include "coordinator/coordinator_service.h"

namespace quorum::coord {

uint32_t CoordinatorService::id_for(const std::string& name) {
  auto it = ids_by_name_.find(name);
  if (it != ids_by_name_.end()) return it->second;
  uint32_t id = 0;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
    names_[id] = name;
  } else {
    id = static_cast<uint32_t>(names_.size());
    names_.push_back(name);
  }
  ids_by_name_.emplace(name, id);
  assignments_.push_back({id, name});
  ++evict_events_;
  return id;
}

bool CoordinatorService::idle(uint32_t id) const {
  if (pilot_ && *pilot_ == id) return false;
  if (scheduled_ids_.count(id)) return false;  // ranks may be running it on the fast path
  return settled(id);
}

bool CoordinatorService::settled(uint32_t id) const {
  if (table_.first_request(id)) return false;  // an open round
  auto it = tensors_.find(id);
  if (it == tensors_.end()) return true;
  const TensorState& ts = it->second;
  for (size_t r = 0; r < ts.submitted.size(); ++r) {
    // A rank behind (its late request still to come), a carried gradient, an aborted round
    // still to be skipped: the id is needed.
    if (ts.submitted[r] != ts.rounds_run || ts.carry[r] || ts.skip[r]) return false;
  }
  return true;
}

void CoordinatorService::evict_if_over_capacity() {
  const size_t capacity = std::max<size_t>(options_.cache_capacity, 1);
  if (ids_by_name_.size() <= capacity) return;
  // The scan is linear in the cached names: it runs again only after capacity/8 new names or
  // completed rounds (what can make more of them evictable), so its cost stays amortised when
  // more names than the capacity are in flight at once.
  if (evict_events_ < std::max<size_t>(capacity / 8, 1)) return;
  evict_events_ = 0;
  // Down to 7/8 of the capacity, so the scan below runs once per capacity/8 new names.
  size_t excess = ids_by_name_.size() - capacity + capacity / 8;
  std::unordered_set<uint32_t> held;
  for (const ReadyTensor& t : held_) held.insert(t.id);
  std::vector<std::pair<uint64_t, uint32_t>> candidates;  // (last use, id)
  for (const auto& [name, id] : ids_by_name_) {
    if (held.count(id) || !idle(id)) continue;
    auto ts = tensors_.find(id);
    candidates.emplace_back(ts == tensors_.end() ? 0 : ts->second.last_use, id);
  }
  if (candidates.size() > excess) {
    std::nth_element(candidates.begin(), candidates.begin() + static_cast<ptrdiff_t>(excess),
                     candidates.end());
    candidates.resize(excess);
  }
  std::unordered_set<uint32_t> gone;
  for (const auto& [use, id] : candidates) {
    ids_by_name_.erase(names_[id]);
    tensors_.erase(id);
    stall_warned_.erase(id);
    retiring_.push_back(id);
    ++evictions_;
    evicted_.push_back(id);
    gone.insert(id);
  }
  learner_.forget(gone);
  // Departed ranks will never acknowledge: nothing waits for them.
  for (int r = 0; r < options_.size; ++r) {
    if (departed_[static_cast<size_t>(r)]) acknowledge_evictions(r, evictions_);
  }
}

void CoordinatorService::acknowledge_evictions(int rank, uint64_t seen) {
  auto& mine = evictions_seen_[static_cast<size_t>(rank)];
  seen = std::min(seen, evictions_);  // a rank cannot have seen more than was announced
  if (seen <= mine) return;
  // retiring_[i] is eviction number base + i + 1 (evictions are retired in order).
  auto& known = known_[static_cast<size_t>(rank)];
  const uint64_t base = evictions_ - retiring_.size();
  for (uint64_t n = std::max(mine, base); n < seen; ++n) known.erase(retiring_[n - base]);
  mine = seen;
  uint64_t everyone = *std::min_element(evictions_seen_.begin(), evictions_seen_.end());
  while (!retiring_.empty() && evictions_ - retiring_.size() < everyone) {
    uint32_t id = retiring_.front();
    retiring_.pop_front();
    std::string().swap(names_[id]);
    free_ids_.push_back(id);
  }
}

}  // namespace quorum::coord
