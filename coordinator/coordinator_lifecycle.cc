// The coordinator and the job's members: flush() across ranks, orderly and abrupt departures,
// heartbeats and failure detection, and the stall inspector (on_tick).
#include <algorithm>
#include <limits>
#include <optional>
#include <unordered_set>

#include "coordinator/coordinator_service.h"

namespace quorum::coord {

void CoordinatorService::maybe_flush_all() {
  for (int r = 0; r < options_.size; ++r) {
    if (!departed_[static_cast<size_t>(r)] && !flush_requested_[static_cast<size_t>(r)]) return;
  }
  std::fill(flush_requested_.begin(), flush_requested_.end(), false);
  // Every rank's carries, per tensor, reduced once more; the ids are sorted so every
  // coordinator run folds in the same order.
  std::vector<uint32_t> ids;
  for (auto& [id, ts] : tensors_) {
    if (ts.boundable && std::any_of(ts.carry.begin(), ts.carry.end(), [](auto c) { return c; })) {
      ids.push_back(id);
    }
  }
  std::sort(ids.begin(), ids.end());
  for (uint32_t id : ids) {
    TensorState& ts = tensors_[id];
    std::fill(ts.carry.begin(), ts.carry.end(), 0);
    Plan p;
    p.kind = PlanKind::kFold;
    p.op = ts.request.op;
    p.dtype = ts.request.dtype;
    p.device = ts.request.device;
    p.ids = {id};
    p.counted = true;
    pending_plans_.push_back(std::move(p));
  }
  Plan done;
  done.kind = PlanKind::kFlushDone;
  pending_plans_.push_back(std::move(done));
}

std::vector<Outgoing> CoordinatorService::on_flush(int rank, Clock::time_point now) {
  end_schedule("rank " + std::to_string(rank) + " called flush()");
  flush_requested_[static_cast<size_t>(rank)] = true;
  // Whatever is ready goes first, so carries counted here are the engines' carries.
  std::vector<Outgoing> out = flush(now, true);
  maybe_flush_all();
  std::vector<Outgoing> more = flush(now, true);
  out.insert(out.end(), more.begin(), more.end());
  return out;
}

void CoordinatorService::depart(int rank, const std::string& reason, Clock::time_point now) {
  if (departed_[static_cast<size_t>(rank)]) return;
  departed_[static_cast<size_t>(rank)] = true;
  end_schedule(reason);
  acknowledge_evictions(rank, evictions_);  // it will never name an id again
  if (departure_.empty()) departure_ = reason;
  (void)now;
  // Rounds that still miss some rank can never run now.
  for (uint32_t id : table_.take_all_pending()) {
    fail_id(id, StatusCode::kAborted,
            "tensor '" + names_[id] + "': " + departure_ + " before every rank submitted it");
  }
  if (std::any_of(flush_requested_.begin(), flush_requested_.end(), [](bool b) { return b; })) {
    std::fill(flush_requested_.begin(), flush_requested_.end(), false);
    Plan done;
    done.kind = PlanKind::kFlushDone;
    done.code = StatusCode::kAborted;
    done.message = "flush: " + departure_;
    pending_plans_.push_back(std::move(done));
  }
}

std::vector<Outgoing> CoordinatorService::on_goodbye(int rank, Clock::time_point now) {
  depart(rank, "rank " + std::to_string(rank) + " has shut down", now);
  // Everything already complete goes out now: the departing rank still executes it.
  std::vector<Outgoing> out = flush(now, true);
  if (!out.empty()) out.push_back({rank, out.front().message});
  out.push_back({rank, GoodbyeAck{}});
  return out;
}

std::vector<Outgoing> CoordinatorService::on_lost(int rank, const std::string& why,
                                                  Clock::time_point now) {
  std::string reason = "rank " + std::to_string(rank) + " failed (" + why + ")";
  depart(rank, reason, now);
  // Held tensors included the lost rank's part; running them now would hang the others.
  for (const ReadyTensor& t : held_) {
    fail_id(t.id, StatusCode::kAborted, "tensor '" + names_[t.id] + "': " + departure_);
  }
  held_.clear();
  // Collectives already in flight that include it never finish: every engine abandons them.
  std::vector<Outgoing> out{{kAllRanks, PeerFailed{rank, reason}}};
  for (Outgoing& o : flush(now, true)) out.push_back(std::move(o));
  return out;
}

std::vector<Outgoing> CoordinatorService::on_tick(Clock::time_point now) {
  std::vector<Outgoing> out{{kAllRanks, Heartbeat{}}};
  for (int r = 0; r < options_.size; ++r) {
    auto& heard = last_heard_[static_cast<size_t>(r)];
    if (departed_[static_cast<size_t>(r)] || !heard) continue;
    if (now - *heard > options_.failure_timeout) {
      double secs = std::chrono::duration<double>(now - *heard).count();
      for (Outgoing& o : on_lost(r, "silent for " + std::to_string(static_cast<int>(secs)) +
                                        " s, past QUORUM_FAILURE_TIMEOUT_SEC",
                                 now)) {
        out.push_back(std::move(o));
      }
    }
  }
  for (uint32_t id : table_.open_ids()) {
    auto since = table_.first_arrival(id);
    if (!since || now - *since < options_.stall_warning) continue;
    std::vector<int> present = table_.present(id);
    std::string have, missing;
    for (int r = 0; r < options_.size; ++r) {
      bool in = std::find(present.begin(), present.end(), r) != present.end();
      std::string& list = in ? have : missing;
      if (!list.empty()) list += ',';
      list += std::to_string(r);
    }
    double secs = std::chrono::duration<double>(now - *since).count();
    std::string what = "tensor '" + names_[id] + "' was submitted by rank(s) " + have +
                       " but not by rank(s) " + missing + " for " +
                       std::to_string(static_cast<int>(secs)) + " s";
    if (options_.stall_abort > Clock::duration::zero() && now - *since >= options_.stall_abort) {
      table_.take(id);
      stall_warned_.erase(id);
      TensorState& ts = state(id);
      // Every rank's handle for this round fails: the ranks that never submitted fail theirs
      // when it comes (their engines remember the error), and it is skipped here.
      for (int r = 0; r < options_.size; ++r) {
        if (std::find(present.begin(), present.end(), r) == present.end()) {
          ts.skip[static_cast<size_t>(r)]++;
        }
      }
      fail_id(id, StatusCode::kAborted,
              "stalled: " + what + " (QUORUM_STALL_ABORT_SEC)");
      if (options_.log) options_.log("stall inspector: aborted " + what);
      continue;
    }
    auto warned = stall_warned_.find(id);
    if (warned == stall_warned_.end() || warned->second != *since) {
      stall_warned_[id] = *since;
      if (options_.log) options_.log("stall inspector: " + what);
    }
  }
  for (Outgoing& o : flush(now, false)) out.push_back(std::move(o));
  return out;
}

}  // namespace quorum::coord
