// The one clock every layer stamps with: steady_clock in nanoseconds. Timeline events, the
// hierarchical allreduce's level times and the control plane's clock-offset handshake must
// agree, so they all read it here.
#pragma once

#include <chrono>
#include <cstdint>

namespace quorum::ops {

inline int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace quorum::ops
