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
  const auto now = std::chrono::steady_clock::now();
  const double collective = hooks_.collective_seconds ? hooks_.collective_seconds() : 0.0;
  if (policy_ && last_begin_) {
    policy_->observe_step(std::chrono::duration<double>(now - *last_begin_).count(),
                          collective - last_collective_);
  }
  last_begin_ = now;
  last_collective_ = collective;
  const bool due = schedule_.decision_due();
  const bool periodic = due && agree_on_segment();
  const bool before = schedule_.periodic_segment();
  StepPlan plan = schedule_.begin(periodic);
  if (!due && schedule_.periodic_segment() != before) {  // fixed periodic, or warm-up ended
    note_mode(schedule_.periodic_segment(), schedule_.periodic_segment()
                                                ? "QUORUM_SYNC_MODE=periodic: warm-up over"
                                                : "warm-up");
  }
  return plan;
}

bool StepControl::agree_on_segment() {
  std::vector<unsigned char> msg(kDecisionBytes, 0);
  if (policy_) {
    SegmentDecision d = policy_->decide(hooks_.waiting_fraction ? hooks_.waiting_fraction() : 0);
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
  const bool periodic = msg[0] != 0;
  msg.back() = 0;
  std::string reason(reinterpret_cast<const char*>(msg.data() + 1));
  ++segments_;
  if (periodic != periodic_now_ || segments_ == 1) note_mode(periodic, reason);
  return periodic;
}

void StepControl::note_mode(bool periodic, const std::string& reason) {
  periodic_now_ = periodic;
  const char* name = periodic ? "periodic" : "gradient rounds";
  if (rank_ == 0) {
    QLOG(kWarn, kCoord) << "step policy: segment at step " << schedule_.next_step() << " runs "
                        << name << ": " << reason;
  }
  if (auto tl = hooks_.timeline ? hooks_.timeline() : nullptr) {
    tl->record({'i', 'p', Lane::kMode, "mode", name, Timeline::now_ns(), 0,
                {{"reason", reason}, {"step", static_cast<int64_t>(schedule_.next_step())}}});
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
