// Groups ready tensors into plans. Allreduces with the same op, dtype and device kind share a
// fusion buffer while their wire bytes stay within the threshold; a tensor larger than the
// threshold or than `max_tensor_bytes` gets a plan of its own (reduced in place, no fusion
// buffer: copying a large tensor in and out costs more than the latency fusion saves).
// Broadcasts and allgathers get one plan each. Plans keep the order in which their first tensor
// became ready. Pure logic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "coordinator/messages.h"
#include "coordinator/readiness_table.h"

namespace quorum::coord {

// Returns the plans for `ready` (sequence numbers left 0 for the caller to assign). With
// `bucket_of`, tensors of different learned buckets (see BucketLearner) never share a plan.
std::vector<Plan> plan_fusion(const std::vector<ReadyTensor>& ready, size_t threshold_bytes,
                              const std::function<int(uint32_t)>& bucket_of = nullptr,
                              size_t max_tensor_bytes = SIZE_MAX);

}  // namespace quorum::coord
