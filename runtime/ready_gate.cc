#include "runtime/ready_gate.h"

#include <algorithm>
#include <unordered_set>

namespace quorum {

void ReadyGate::learn(const std::vector<uint32_t>& ids) {
  if (ids.size() < 2) {
    for (uint32_t id : ids) changed_ = group_of_.erase(id) > 0 || changed_;
    return;
  }
  // In steady state every step runs the same plans: nothing to learn, nothing to allocate.
  if (auto first = group_of_.find(ids.front()); first != group_of_.end() && *first->second == ids) {
    const Group& g = first->second;
    if (std::all_of(ids.begin(), ids.end(), [&](uint32_t id) {
          auto it = group_of_.find(id);
          return it != group_of_.end() && it->second == g;
        })) {
      return;
    }
  }
  auto group = std::make_shared<const std::vector<uint32_t>>(ids);
  for (uint32_t id : ids) group_of_[id] = group;
  changed_ = true;
}

void ReadyGate::forget_groups() {
  group_of_.clear();
  changed_ = true;
}

std::vector<PendingRequest> ReadyGate::release(std::vector<PendingRequest> fresh, int64_t now_ns,
                                               const IdOf& id_of, const InFlight& in_flight,
                                               bool may_hold) {
  if (held_.empty() && fresh.empty()) return {};
  if (!may_hold || hold_limit_ns_ <= 0 || group_of_.empty()) {  // nothing to wait for
    if (held_.empty()) return fresh;
    for (PendingRequest& r : fresh) held_.push_back(std::move(r));
    return take_all();
  }
  // Called on every poll of a collective: with nothing new, no group changed and nothing due,
  // the answer is the last one (nothing goes; announced members finishing cannot complete a
  // group).
  if (fresh.empty() && !changed_ && now_ns < *deadline_ns()) return {};
  changed_ = false;
  for (PendingRequest& r : fresh) {
    held_.push_back(std::move(r));
    held_at_.push_back(now_ns);
  }
  if (now_ns >= *deadline_ns()) return take_all();

  std::vector<std::optional<uint32_t>> ids;
  ids.reserve(held_.size());
  std::unordered_set<uint32_t> here;
  for (const PendingRequest& r : held_) {
    ids.push_back(id_of(r.desc.name));
    if (ids.back()) here.insert(*ids.back());
  }
  // Members of the request's group neither here nor announced (0: it may go).
  auto absent = [&](const std::optional<uint32_t>& id) -> size_t {
    if (!id) return 0;  // not described yet: no group to wait for
    auto g = group_of_.find(*id);
    if (g == group_of_.end()) return 0;
    size_t n = 0;
    for (uint32_t member : *g->second) {
      if (member != *id && !here.count(member) && !in_flight(member)) ++n;
    }
    return n;
  };
  std::vector<PendingRequest> out, keep;
  std::vector<int64_t> keep_at;
  awaited_ = 0;
  for (size_t i = 0; i < held_.size(); ++i) {
    const size_t missing = absent(ids[i]);
    if (missing > 0) awaited_ = awaited_ == 0 ? missing : std::min(awaited_, missing);
    if (missing == 0) {
      out.push_back(std::move(held_[i]));
    } else {
      keep.push_back(std::move(held_[i]));
      keep_at.push_back(held_at_[i]);
    }
  }
  held_ = std::move(keep);
  held_at_ = std::move(keep_at);
  return out;
}

std::vector<PendingRequest> ReadyGate::take_all() {
  std::vector<PendingRequest> out = std::move(held_);
  held_.clear();
  held_at_.clear();
  awaited_ = 0;
  return out;
}

std::optional<int64_t> ReadyGate::deadline_ns() const {
  if (held_at_.empty()) return std::nullopt;
  return held_at_.front() + hold_limit_ns_;  // the oldest: arrival order is kept
}

}  // namespace quorum
