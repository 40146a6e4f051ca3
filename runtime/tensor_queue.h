// Hand-off from framework threads to the engine: newly enqueued requests, and the set of names
// in flight on this rank (a name may not be enqueued again until its operation completes).
// push() is called from any thread; drain() and finish() from the engine thread. After close(),
// push() fails with the close reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "runtime/pending_request.h"

namespace quorum {

class TensorQueue {
 public:
  // `wake` is called after a successful push, outside the queue's lock: after each one, or as
  // wake_after() asks. A request of more than `alone_bytes` bytes always wakes at once: it is
  // never fused, so no held group is waiting for it to arrive.
  explicit TensorQueue(std::function<void()> wake, size_t alone_bytes = SIZE_MAX)
      : wake_(std::move(wake)), alone_bytes_(alone_bytes) {}

  // `may_wake` false: no wake for this push (the caller sees to the engine itself).
  Status push(PendingRequest&& r, bool may_wake = true);
  std::vector<PendingRequest> drain();
  // Until the next drain(), wake only once `pushes` requests arrived since the last drain (0:
  // every push). Wakes at once if that many already have. The engine asks this while it holds
  // a fused group back and knows how many members are still to come (it wakes by itself at the
  // hold deadline), so a backward pass does not wake it once per gradient.
  void wake_after(size_t pushes);
  void finish(const std::string& name);
  // Refuses further pushes with `reason`; returns what was pushed but not yet drained.
  std::vector<PendingRequest> close(const std::string& reason);

 private:
  std::function<void()> wake_;
  const size_t alone_bytes_;
  std::mutex mu_;
  std::vector<PendingRequest> fresh_;
  size_t wake_after_ = 0;
  size_t since_drain_ = 0;
  std::unordered_set<std::string> in_flight_;
  std::string closed_reason_;
};

}  // namespace quorum
