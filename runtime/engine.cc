// The engine thread itself: start and stop, the run loop (poll on the control socket and the
// wake eventfd, heartbeats, failure and shutdown handling) and the counters.
#include "runtime/engine.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <utility>
#include <cstring>

#include "coordinator/cost_model.h"
#include "ops/kernels.h"
#include "ops/mpi_backend.h"
#include "runtime/handle_state.h"
#include "runtime/logging.h"

namespace quorum {
namespace {

// Marks the thread doing the engine's work, so that a completion callback's wait() (on that
// same thread) does not try to take it over.
class WorkingHere {
 public:
  WorkingHere() { depth_ += 1; }
  ~WorkingHere() { depth_ -= 1; }
  WorkingHere(const WorkingHere&) = delete;
  WorkingHere& operator=(const WorkingHere&) = delete;
  static bool active() { return depth_ > 0; }

 private:
  static thread_local int depth_;
};
thread_local int WorkingHere::depth_ = 0;

}  // namespace

Engine::Engine(Options options)
    : opt_(std::move(options)),
      queue_([this] { wake(); }, static_cast<size_t>(opt_.config.fusion_max_tensor)),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      gate_(cycle_ns()) {
  opt_.host_backend->set_progress_hook([this] { pump(); });
}

Engine::~Engine() {
  if (thread_.joinable()) stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Engine::start() { thread_ = std::thread([this] { run(); }); }

void Engine::wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
}

void Engine::stop() {
  stop_requested_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
}

namespace {
std::string lost_connection(const std::string& why) {
  return "lost the control connection to the coordinator on rank 0 (" + why + ")";
}
}  // namespace

void Engine::pump() {
  send_readiness();
  // Called between tests of a collective in flight: at most every 50 us a read of the control
  // socket (a system call each, and most find nothing).
  receive_plans(Timeline::now_ns() - last_read_ns_ >= 50'000);
  watch_fast_agreement();
}

void Engine::receive_plans(bool read) {
  if (!lost_reason_.empty()) return;
  std::vector<coord::Message> got;
  Status s;
  if (read) s = opt_.client->receive(&got);
  int64_t now = Timeline::now_ns();
  if (read) last_read_ns_ = now;
  if (!got.empty()) last_heard_ns_ = now;
  for (coord::Message& m : got) {
    if (auto* failed = std::get_if<coord::PeerFailed>(&m)) {
      // A collective in flight that includes the failed rank would never finish.
      if (broken_.empty()) broken_ = failed->reason;
      ops::abandon_waits(failed->reason);
      continue;
    }
    if (std::holds_alternative<coord::Heartbeat>(m)) continue;
    inbox_.push_back({std::move(m), now});
  }
  if (!s.is_ok() && lost_reason_.empty()) {
    lost_reason_ = s.message();
    // Most likely rank 0 died: a collective in flight that includes it would never finish (the
    // run loop only sees this once the collective returns).
    ops::abandon_waits(lost_connection(lost_reason_));
  }
  // Liveness both ways: a heartbeat out when we have been quiet, and a silent coordinator is
  // as good as gone.
  const int64_t timeout_ns = static_cast<int64_t>(opt_.config.failure_timeout_sec * 1e9);
  if (now - last_sent_ns_ > std::min<int64_t>(timeout_ns / 3, 1'000'000'000)) {
    Status hb = opt_.client->send(coord::Heartbeat{});
    last_sent_ns_ = now;
    if (!hb.is_ok() && lost_reason_.empty()) lost_reason_ = hb.message();
  }
  if (last_heard_ns_ == 0) last_heard_ns_ = now;
  if (now - last_heard_ns_ > timeout_ns && lost_reason_.empty()) {
    lost_reason_ = "the coordinator on rank 0 has been silent for " +
                   std::to_string((now - last_heard_ns_) / 1'000'000'000) +
                   " s (QUORUM_FAILURE_TIMEOUT_SEC)";
    ops::abandon_waits(lost_reason_);
  }
}

void Engine::run() {
  if (opt_.config.thread_affinity >= 0 && opt_.topology) {
    Status s = opt_.topology->pin_current_thread(static_cast<int>(opt_.config.thread_affinity));
    if (!s.is_ok()) QLOG(kWarn, kEngine) << s.message();
  }
  // Short sleeps in collective waits must be short: the default 50 us timer slack would
  // stretch every back-off pause.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  bool goodbye_sent = false;
  std::unique_lock work(work_mu_);
  const WorkingHere here;
  for (;;) {
    fast_live_.store(fast_.has_value(), std::memory_order_release);
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {opt_.client->fd(), POLLIN, 0}};
    // Wakes at least every half second to keep heartbeats going while idle, and when held
    // readiness is due.
    int timeout_ms = 500;
    std::optional<int64_t> due = gate_.deadline_ns();
    if (fast_ && fast_->out_of_order_since > 0) due = order_deadline_ns();
    if (due) {
      const int64_t left = *due - Timeline::now_ns();
      timeout_ms = static_cast<int>(std::clamp<int64_t>((left + 999'999) / 1'000'000, 0, 500));
    }
    bool socket_ready = true;  // not polled: read it anyway
    if (inbox_.empty()) {
      work.unlock();
      const int polled = ::poll(fds, 2, timeout_ms);
      const int poll_errno = errno;
      work.lock();
      if (polled < 0 && poll_errno != EINTR) {
        lost_reason_ = std::string("poll failed: ") + std::strerror(poll_errno);
      }
      socket_ready = polled != 0 && fds[1].revents != 0;
      uint64_t drained;  // one read takes the eventfd's whole count
      if (fds[0].revents != 0 && ::read(wake_fd_, &drained, sizeof(drained)) < 0) drained = 0;
    }
    if (!goodbye_sent) send_readiness();
    {
      std::lock_guard lk(flush_mu_);
      if (flush_handle_ && !flush_sent_ && !goodbye_sent && fast_) {
        leave_fast("flush() needs the coordinator");
      } else if (flush_handle_ && !flush_sent_ && !goodbye_sent) {
        Status s = opt_.client->send(coord::Flush{});
        if (!s.is_ok()) lost_reason_ = s.message();
        flush_sent_ = true;
      }
    }
    receive_plans(socket_ready);
    while (!inbox_.empty()) {
      Received r = std::move(inbox_.front());
      inbox_.pop_front();
      if (auto* batch = std::get_if<coord::PlanBatch>(&r.message)) {
        handle_batch(*batch, r.at_ns);
      } else if (auto* abort = std::get_if<coord::FastAbort>(&r.message)) {
        on_fast_abort(*abort);
      } else if (std::holds_alternative<coord::GoodbyeAck>(r.message)) {
        goodbye_acked_ = true;
      }
    }
    if (fast_ && stop_requested_) leave_fast("quorum is shutting down");
    if (fast_ && broken_.empty() && lost_reason_.empty()) run_fast();
    if (!goodbye_sent && evictions_acked_ != evictions_seen_) send_readiness();  // prompt ack
    if (goodbye_acked_) break;
    if (!broken_.empty() || !lost_reason_.empty()) {
      if (fast_) {  // held requests fail with everything else
        for (auto& [name, r] : fast_->held) pending_.emplace(name, std::move(r));
        fast_.reset();
      }
      if (broken_.empty()) {
        broken_ = lost_connection(lost_reason_);
      }
      ops::abandon_waits(broken_);
      fast_live_.store(false, std::memory_order_release);
      fail_everything(broken_);
      opt_.client->close();
      return;
    }
    if (stop_requested_ && !goodbye_sent && !fast_) {
      // Everything enqueued before shutdown() is announced ahead of the Goodbye, held back by
      // the readiness gate or not yet read from the queue alike: a round every rank has
      // announced still runs (the coordinator sends plans due before its GoodbyeAck), and the
      // rest fails with "shut down" once the coordinator lets this rank go.
      std::vector<PendingRequest> last = gate_.take_all();
      for (PendingRequest& r : queue_.close("quorum is shut down")) last.push_back(std::move(r));
      announce(std::move(last));
      Status s = opt_.client->send(coord::Goodbye{});
      if (!s.is_ok()) lost_reason_ = s.message();
      goodbye_sent = true;
    }
  }
  fast_live_.store(false, std::memory_order_release);
  fail_everything("quorum was shut down before it ran");
  opt_.client->close();
}

bool Engine::working_here() { return WorkingHere::active(); }

void Engine::help(const detail::HandleState& handle, bool owe_wake) {
  if (!fast_live_.load(std::memory_order_acquire) || WorkingHere::active()) {
    if (owe_wake) wake();
    return;
  }
  // Waits while the engine thread finishes what it is at (it lets go before it sleeps).
  std::unique_lock work(work_mu_);
  const WorkingHere here;
  if (fast_ && !stop_requested_ && broken_.empty() && lost_reason_.empty() &&
      !handle.finished.load(std::memory_order_acquire)) {
    take_fast(drain_requests());
    run_fast();
  }
  fast_live_.store(fast_.has_value(), std::memory_order_release);
  // What the engine thread must see to: messages read meanwhile (it sleeps on the socket they
  // came from), the coordinator path again, a failure, or the request still undone (its
  // bucket incomplete, or an order grace the engine thread's poll does not know of).
  if (!inbox_.empty() || !fast_ || !broken_.empty() || !lost_reason_.empty() ||
      !handle.finished.load(std::memory_order_acquire)) {
    wake();
  }
}

void Engine::fail_everything(const std::string& reason) {
  std::shared_ptr<detail::HandleState> flush;
  {
    std::lock_guard lk(flush_mu_);
    flush = std::move(flush_handle_);
    exited_ = true;  // called only as the engine thread ends
  }
  if (flush) flush->complete(Status(StatusCode::kAborted, "flush: " + reason));
  std::vector<PendingRequest> unsent = queue_.close(reason);
  for (PendingRequest& r : unsent) pending_.emplace(r.desc.name, std::move(r));
  for (PendingRequest& r : gate_.take_all()) pending_.emplace(r.desc.name, std::move(r));
  std::vector<std::string> names;
  for (auto& [name, r] : pending_) names.push_back(name);
  for (const std::string& name : names) {
    complete(name, Status(StatusCode::kAborted, "tensor '" + name + "': " + reason));
  }
}

Stats Engine::stats() const {
  Stats s;
  s.steps = steps_.load();
  s.plans = plans_.load();
  s.tensors = tensors_.load();
  s.fused_tensors = fused_.load();
  s.errors = errors_.load();
  s.bytes = bytes_.load();
  s.collective_seconds = static_cast<double>(collective_ns_.load()) * 1e-9;
  s.negotiation_seconds = static_cast<double>(negotiation_ns_.load()) * 1e-9;
  s.control_bytes_sent = opt_.client ? opt_.client->bytes_sent() : 0;
  s.bounded_plans = bounded_plans_.load();
  s.late_answered = late_answered_.load();
  s.folded = folded_.load();
  s.bounded_peak_bytes = static_cast<uint64_t>(extra_peak_.load());
  s.bounded_mode = bounded_now_.load();
  s.allreduce_native = by_algorithm_[static_cast<size_t>(ops::Algorithm::kNative)].load();
  s.allreduce_ring = by_algorithm_[static_cast<size_t>(ops::Algorithm::kRing)].load();
  s.allreduce_tree = by_algorithm_[static_cast<size_t>(ops::Algorithm::kTree)].load();
  s.allreduce_hierarchical =
      by_algorithm_[static_cast<size_t>(ops::Algorithm::kHierarchical)].load();
  s.hierarchical_intra_seconds = static_cast<double>(intra_ns_.load()) * 1e-9;
  s.hierarchical_inter_seconds = static_cast<double>(inter_ns_.load()) * 1e-9;
  s.fast_plans = fast_plans_.load();
  s.schedules = schedules_.load();
  s.fast_fallbacks = fast_fallbacks_.load();
  return s;
}

}  // namespace quorum
