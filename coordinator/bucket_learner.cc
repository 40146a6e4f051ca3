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
  // One open bucket per key. A tensor too large to fuse is a bucket of its own and closes
  // nothing: the small tensors on either side of it still share a bucket. (ResNet-50 alternates
  // large convolution weights with small norm parameters; cutting at every large tensor made
  // about 70 plans a step, this about 41.)
  struct Open {
    size_t index;
    size_t bytes;
  };
  std::unordered_map<uint32_t, Open> open;
  for (const Seen& s : current_) {
    size_t index = members_.size();
    if (s.bytes > max_tensor_bytes_) {
      members_.emplace_back();
    } else {
      auto it = open.find(s.key);
      if (it == open.end() || it->second.bytes + s.bytes > bucket_bytes_) {
        it = open.insert_or_assign(s.key, Open{members_.size(), 0}).first;
        members_.emplace_back();
      }
      it->second.bytes += s.bytes;
      index = it->second.index;
    }
    members_[index].push_back(s.id);
    bucket_[s.id] = static_cast<int>(index);
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
