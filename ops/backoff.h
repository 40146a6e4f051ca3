// How a wait loop on the engine thread pauses between polls: yields first, so a short wait
// stays in the tens of microseconds, then sleeps, doubling up to `cap`, so a long one costs
// almost no CPU next to the framework's compute threads.
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>

namespace quorum::ops {

class Backoff {
 public:
  explicit Backoff(std::chrono::microseconds cap) : cap_(cap) {}

  void pause() {
    if (polls_++ < kYieldPolls) {
      std::this_thread::yield();
      return;
    }
    std::this_thread::sleep_for(sleep_);
    sleep_ = std::min(sleep_ * 2, cap_);
  }

 private:
  static constexpr int kYieldPolls = 200;
  std::chrono::microseconds cap_;
  std::chrono::microseconds sleep_{1};
  int polls_ = 0;
};

}  // namespace quorum::ops
