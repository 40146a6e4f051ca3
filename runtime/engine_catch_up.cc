// Catching up (quorum::enqueue_catch_up, rounds_behind): a rank behind on bounded rounds takes
// the results of the rounds that ran without it and contributes nothing for them. Engine thread.
#include <algorithm>

#include "runtime/engine.h"
#include "runtime/logging.h"

namespace quorum {

std::vector<PendingRequest> Engine::drain_requests() {
  std::vector<PendingRequest> fresh = queue_.drain();
  std::vector<PendingRequest> kept;
  kept.reserve(fresh.size());
  for (PendingRequest& r : fresh) {
    if (!r.catch_up) {
      kept.push_back(std::move(r));
      continue;
    }
    const std::string& name = r.desc.name;
    bool stored = standing_in_.count(name) > 0;  // a plan standing in for it runs right now
    if (r.input.device.kind == Device::Kind::kCuda) {
      auto d = device_history_.find(name);
      stored = stored || (d != device_history_.end() && !d->second.stored.empty());
    } else {
      auto h = history_.find(name);
      stored = stored || (h != history_.end() && !h->second.stored.empty());
    }
    if (!stored) {
      refuse_catch_up(r);
      continue;
    }
    // A schedule would run it as a contribution: the coordinator path answers it instead.
    if (fast_) leave_fast("tensor '" + name + "' catches up a round it missed");
    kept.push_back(std::move(r));
  }
  return kept;
}

void Engine::refuse_catch_up(PendingRequest& r) {
  queue_.finish(r.desc.name);
  errors_.fetch_add(1, std::memory_order_relaxed);
  r.handle->complete(Status(StatusCode::kFailedPrecondition,
                            "tensor '" + r.desc.name +
                                "': nothing to catch up: no round of it ran without rank " +
                                std::to_string(opt_.rank) + " that it has not taken yet"));
}

void Engine::note_behind() {
  uint64_t most = 0;
  for (const auto& [name, h] : history_) most = std::max<uint64_t>(most, h.stored.size());
  for (const auto& [name, h] : device_history_) most = std::max<uint64_t>(most, h.stored.size());
  behind_.store(most, std::memory_order_release);
}

}  // namespace quorum
