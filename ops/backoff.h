// How a wait loop on the engine thread pauses between polls: yields first, so a short wait
// stays in the tens of microseconds, then sleeps, doubling up to `cap`, so a long one costs
// almost no CPU next to the framework's compute threads. A patient wait (one for peers to
// arrive, not for data to move) lets its pauses grow further in proportion to the time waited.
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>

namespace quorum::ops {

class Backoff {
 public:
  // `patient_cap` above `cap`: once a wait has lasted, each pause may grow to 1/8 of the time
  // already slept, up to `patient_cap`, so a long wait wakes the thread far less often and
  // finishes at most about 1/8 later than it could have.
  explicit Backoff(std::chrono::microseconds cap, std::chrono::microseconds patient_cap = {})
      : cap_(cap), patient_cap_(std::max(cap, patient_cap)) {}

  void pause() {
    if (polls_++ < kYieldPolls) {
      std::this_thread::yield();
      return;
    }
    std::this_thread::sleep_for(sleep_);
    slept_ += sleep_;
    sleep_ = std::min(sleep_ * 2, std::max(cap_, std::min(patient_cap_, slept_ / 8)));
  }

 private:
  static constexpr int kYieldPolls = 200;
  std::chrono::microseconds cap_, patient_cap_;
  std::chrono::microseconds sleep_{1};
  std::chrono::microseconds slept_{0};
  int polls_ = 0;
};

}  // namespace quorum::ops
