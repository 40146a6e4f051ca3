#include "coordinator/bucket_learner.h"

namespace quorum::coord {

void BucketLearner::observe_ready(const ReadyTensor& t) {
  if (in_current_.count(t.id)) {  // seen twice: the previous iteration is complete
    rebuild();
    current_.clear();
    in_current_.clear();
    planned_.clear();
    ++iterations_;
  }
  uint32_t key = static_cast<uint32_t>(t.request.op) | static_cast<uint32_t>(t.request.dtype) << 8 |
                 static_cast<uint32_t>(t.request.device) << 16;
  current_.push_back({t.id, t.wire_bytes, key});
  in_current_.insert(t.id);
}

void BucketLearner::rebuild() {
  bucket_.clear();
  members_.clear();
  size_t bytes = 0;
  uint32_t key = 0;
  bool open_alone = false;  // the open bucket holds a tensor too large to fuse
  for (const Seen& s : current_) {
    // A tensor too large to fuse stands alone, and nothing joins it.
    const bool alone = s.bytes > max_tensor_bytes_;
    bool fits = !members_.empty() && key == s.key && bytes + s.bytes <= bucket_bytes_ && !alone &&
                !open_alone;
    if (!fits) {
      members_.emplace_back();
      bytes = 0;
      key = s.key;
      open_alone = alone;
    }
    members_.back().push_back(s.id);
    bytes += s.bytes;
    bucket_[s.id] = static_cast<int>(members_.size() - 1);
  }
}

void BucketLearner::forget(const std::unordered_set<uint32_t>& ids) {
  if (ids.empty()) return;
  std::erase_if(current_, [&](const Seen& s) { return ids.count(s.id) > 0; });
  for (uint32_t id : ids) {
    in_current_.erase(id);
    planned_.erase(id);
    bucket_.erase(id);
  }
  for (auto& members : members_) {
    std::erase_if(members, [&](uint32_t m) { return ids.count(m) > 0; });
  }
}

int BucketLearner::bucket_of(uint32_t id) const {
  auto it = bucket_.find(id);
  return it == bucket_.end() ? -1 : it->second;
}

bool BucketLearner::complete(uint32_t id, const std::unordered_set<uint32_t>& ready) const {
  int b = bucket_of(id);
  if (b < 0) return false;
  for (uint32_t m : members_[static_cast<size_t>(b)]) {
    if (!ready.count(m) && !planned_.count(m)) return false;
  }
  return true;
}

}  // namespace quorum::coord
