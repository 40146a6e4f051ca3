// The shared state behind a public Handle. complete() is called exactly once, by whichever
// thread finishes the operation (the engine thread, or the enqueuing thread for an immediate
// error); it runs the callback first, then publishes the result to wait()/poll().
#pragma once

#include <atomic>
#include <condition_variable>
#include <thread>
#include <memory>
#include <mutex>

#include "quorum/quorum.h"
#include "runtime/logging.h"

namespace quorum::detail {

struct HandleState {
  HandleState(std::string tensor, DoneCallback cb)
      : name(std::move(tensor)), callback(std::move(cb)) {}

  void complete(Status s) {
    run_callback(s);
    publish(std::move(s));
  }

  // The two halves of complete(), for callers that record something in between.
  void run_callback(const Status& s) {
    if (!callback) return;
    try {
      callback(s);
    } catch (...) {
      QLOG(kError, kEngine) << "a completion callback threw; the exception was dropped";
    }
    callback = nullptr;
  }

  void publish(Status s) {
    std::lock_guard lk(mu);
    status = std::move(s);
    done = true;
    finished.store(true, std::memory_order_release);
    cv.notify_all();
  }

  Status wait() {
    // Small collectives finish within tens of microseconds: a short yielding spin avoids a
    // futex sleep and wake-up on that path, then the thread sleeps.
    for (int i = 0; i < 64 && !finished.load(std::memory_order_acquire); ++i) {
      std::this_thread::yield();
    }
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return done; });
    return status;
  }

  bool poll() {
    std::lock_guard lk(mu);
    return done;
  }

  const std::string name;  // the tensor, for errors and the timeline
  std::atomic<int64_t> count{0};  // gradients summed into an allreduce result
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::atomic<bool> finished{false};  // mirrors `done` for the lock-free spin in wait()
  // A framework thread has blocked in wait() on it: the fast path must not hold it long for a
  // schedule whose order the framework may never give (it waits first).
  std::atomic<bool> waited{false};
  Status status;
  DoneCallback callback;
};

struct HandleAccess {
  static Handle make(std::shared_ptr<HandleState> s) {
    Handle h;
    h.state_ = std::move(s);
    return h;
  }
  static HandleState* state(const Handle& h) { return h.state_.get(); }
};

}  // namespace quorum::detail
