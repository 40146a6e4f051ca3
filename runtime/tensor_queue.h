// Hand-off from framework threads to the engine: newly enqueued requests, and the set of names
// in flight on this rank (a name may not be enqueued again until its operation completes).
// push() is called from any thread; drain() and finish() from the engine thread. After close(),
// push() fails with the close reason.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "runtime/pending_request.h"

namespace quorum {

class TensorQueue {
 public:
  // `wake` is called after each successful push, outside the queue's lock.
  explicit TensorQueue(std::function<void()> wake) : wake_(std::move(wake)) {}

  Status push(PendingRequest&& r);
  std::vector<PendingRequest> drain();
  void finish(const std::string& name);
  // Refuses further pushes with `reason`; returns what was pushed but not yet drained.
  std::vector<PendingRequest> close(const std::string& reason);

 private:
  std::function<void()> wake_;
  std::mutex mu_;
  std::vector<PendingRequest> fresh_;
  std::unordered_set<std::string> in_flight_;
  std::string closed_reason_;
};

}  // namespace quorum
