// Holds back this rank's readiness for a tensor until the rest of its fused group is ready here
// too. The coordinator plans a learned bucket only once all of its members are ready on every
// rank, so announcing members one at a time buys nothing; it costs a control message and a
// wake-up of rank 0's coordinator per tensor. The groups are learned from the plans this rank
// ran: ids that last ran in one fused plan form a group. A request is released when every other
// member of its group is ready here as well (held, fresh, or already announced and awaiting its
// plan), when it belongs to no group, or once the oldest held request has waited `hold_limit`
// (QUORUM_CYCLE_TIME_MS; 0 turns holding off), so a member that does not come this step delays
// the others by at most that. Engine thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/pending_request.h"

namespace quorum {

class ReadyGate {
 public:
  using IdOf = std::function<std::optional<uint32_t>(const std::string& name)>;
  using InFlight = std::function<bool(uint32_t id)>;

  explicit ReadyGate(int64_t hold_limit_ns) : hold_limit_ns_(hold_limit_ns) {}

  // A plan ran `ids` together (one id: that tensor now runs alone).
  void learn(const std::vector<uint32_t>& ids);
  // Ids were evicted and may be reused: every group is forgotten and learned again.
  void forget_groups();

  // Adds `fresh` to what is held and returns what may be announced now, in arrival order.
  // `may_hold` false releases everything (bounded mode: a rank held back past the coordinator's
  // grace would be counted late).
  std::vector<PendingRequest> release(std::vector<PendingRequest> fresh, int64_t now_ns,
                                      const IdOf& id_of, const InFlight& in_flight,
                                      bool may_hold = true);
  // Everything held, e.g. to fail it at shutdown.
  std::vector<PendingRequest> take_all();

  bool empty() const { return held_.empty(); }
  // After release(): the fewest further requests that could complete a held group (0 when
  // nothing is held).
  size_t awaited() const { return awaited_; }
  // When the oldest held request must go out (nullopt when nothing is held).
  std::optional<int64_t> deadline_ns() const;
  size_t groups() const { return group_of_.size(); }

 private:
  using Group = std::shared_ptr<const std::vector<uint32_t>>;

  int64_t hold_limit_ns_;
  std::unordered_map<uint32_t, Group> group_of_;
  bool changed_ = false;  // groups learned or forgotten since release() last looked
  std::vector<PendingRequest> held_;
  std::vector<int64_t> held_at_;  // when each of held_ was first held
  size_t awaited_ = 0;
};

}  // namespace quorum
