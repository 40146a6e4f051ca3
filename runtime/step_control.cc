#include "runtime/step_control.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "runtime/logging.h"

namespace quorum {
namespace {

constexpr size_t kDecisionBytes = 256;  // byte 0: periodic or not; then the reason, NUL-ended

}  // namespace

StepControl::StepControl(const Config& config, int rank, Hooks hooks)
    : rank_(rank),
      hooks_(std::move(hooks)),
      schedule_({config.sync_mode == "periodic", config.sync_mode == "auto",
                 config.average_period, config.average_warmup}) {
  if (rank == 0 && config.sync_mode == "auto") {
    PeriodicPolicyOptions po;
    po.enter = config.periodic_enter;
    po.straggler_limit = config.async_enter;
    policy_.emplace(po);
  }
}

StepPlan StepControl::begin() {
  std::lock_guard lk(mu_);
  if (policy_) {  // only rank 0's auto policy measures steps
    const auto now = std::chrono::steady_clock::now();
    const double collective = hooks_.collective_seconds();
    if (last_begin_) {
      policy_->observe_step(std::chrono::duration<double>(now - *last_begin_).count(),
                            collective - last_collective_);
    }
    last_begin_ = now;
    last_collective_ = collective;
  }
  const bool before = schedule_.periodic_segment();
  std::string reason;
  const bool due = schedule_.decision_due();
  const bool periodic = due && agree_on_segment(&reason);
  const bool first_decision = due && !decided_;
  decided_ = decided_ || due;
  StepPlan plan = schedule_.begin(periodic);
  const bool now_periodic = schedule_.periodic_segment();
  if (now_periodic != before || first_decision) {
    if (!due) reason = now_periodic ? "QUORUM_SYNC_MODE=periodic: warm-up over" : "warm-up";
    note_mode(now_periodic, reason, plan.step);
  }
  return plan;
}

bool StepControl::agree_on_segment(std::string* reason) {
  std::vector<unsigned char> msg(kDecisionBytes, 0);
  if (policy_) {
    SegmentDecision d = policy_->decide(hooks_.waiting_fraction ? hooks_.waiting_fraction() : 0,
                                        hooks_.bounded_rounds && hooks_.bounded_rounds());
    msg[0] = d.periodic ? 1 : 0;
    std::string reason = d.reason.substr(0, kDecisionBytes - 2);
    std::memcpy(msg.data() + 1, reason.data(), reason.size());
  }
  Status s = hooks_.broadcast(msg.data(), msg.size());
  if (!s.is_ok()) {
    // The job is failing (the broadcast fails only when a rank or the control plane is gone):
    // gradient steps, whose own errors then say why.
    QLOG(kError, kEngine) << "the segment decision did not arrive: " << s.message();
    return false;
  }
  msg.back() = 0;
  *reason = reinterpret_cast<const char*>(msg.data() + 1);
  return msg[0] != 0;
}

void StepControl::note_mode(bool periodic, const std::string& reason, uint64_t step) {
  const char* name = periodic ? "periodic" : "gradient rounds";
  if (rank_ == 0) {
    QLOG(kWarn, kCoord) << "step policy: segment at step " << step << " runs "
                        << name << ": " << reason;
  }
  if (auto tl = hooks_.timeline ? hooks_.timeline() : nullptr) {
    tl->record({'i', 'p', Lane::kMode, "mode", name, Timeline::now_ns(), 0,
                {{"reason", reason}, {"step", static_cast<int64_t>(step)}}});
  }
}

uint64_t StepControl::averagings() const {
  std::lock_guard lk(mu_);
  return averagings_;
}

uint64_t StepControl::local_steps() const {
  std::lock_guard lk(mu_);
  return schedule_.local_steps();
}

void StepControl::averaged() {
  std::lock_guard lk(mu_);
  ++averagings_;
}

}  // namespace quorum
