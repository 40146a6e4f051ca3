// One enqueued operation as the engine holds it from enqueue until completion.
#pragma once

#include <chrono>
#include <memory>

#include "coordinator/messages.h"
#include "quorum/quorum.h"
#include "runtime/handle_state.h"

namespace quorum {

struct PendingRequest {
  coord::TensorRequest desc;  // what the coordinator is told
  Tensor input;
  Tensor output;              // allreduce only
  OutputAllocator allocate;   // allgather only
  size_t elements = 0;        // of input
  bool catch_up = false;      // enqueue_catch_up(): takes a missed round, contributes nothing
  std::shared_ptr<detail::HandleState> handle;
  std::chrono::steady_clock::time_point enqueued;
};

// Checks a request on its face: name, pointers, dtype, shape, sizes, device, root. Returns the
// element count through `elements`.
Status validate_request(const PendingRequest& r, int size, size_t* elements);

}  // namespace quorum
