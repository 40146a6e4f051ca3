// The engines on the coordinator path, after runtime/engine_plans.cc and runtime/ready_gate.cc:
// gradients become ready, the gate holds a learned group, readiness goes out, plans come back.
#include "tools/bench/coord_sim_model.h"

namespace quorum::bench::sim {

// --- ranks ---

void Simulator::ensure_step(int r, int s) {
  Rank& rk = ranks_[static_cast<size_t>(r)];
  if (rk.step == s) return;
  rk.step = s;
  rk.next = 0;
  std::mt19937_64 rng(splitmix(splitmix(opt_.seed) ^ splitmix(uint64_t(r) << 32 | uint32_t(s))));
  std::uniform_real_distribution<double> u(0, 1);
  const int64_t start = t0_ + s * step_ns_ + step_ns_ / 10 + static_cast<int64_t>(u(rng) * skew_ns_);
  const double backward_ns = 0.8 * static_cast<double>(step_ns_);
  rk.slots.resize(backward_.size());
  for (size_t i = 0; i < backward_.size(); ++i) {
    const uint32_t k = backward_[i];
    rk.slots[i] = {start + static_cast<int64_t>(tensors_[k].ready_at * backward_ns), k};
  }
  // Two neighbours ready close together may come in the other order (independent branches of
  // the backward graph); the slots keep their times, the tensors trade places.
  // The pairs are drawn per rank (its own graph's order, the same every step) or, with
  // swap_per_step, afresh each step (nondeterministic scheduling of independent branches).
  std::mt19937_64 pick(opt_.swap_per_step ? rng() : splitmix(splitmix(opt_.seed ^ 0x5a) ^ uint64_t(r)));
  for (size_t i = 0; i + 1 < rk.slots.size(); ++i) {
    if (rk.slots[i + 1].t - rk.slots[i].t <= gap_ns_ && u(pick) < opt_.swap) {
      std::swap(rk.slots[i].k, rk.slots[i + 1].k);
      ++i;
    }
  }
}

void Simulator::next_arrival(int r) {
  Rank& rk = ranks_[static_cast<size_t>(r)];
  if (rk.next >= rk.slots.size()) {
    if (rk.step + 1 >= opt_.steps) return;
    ensure_step(r, rk.step + 1);
  }
  push(rk.slots[rk.next].t, Kind::kArrival, r, 0, ++rk.arrival_gen);
}

void Simulator::on_arrival(int r) {
  Rank& rk = ranks_[static_cast<size_t>(r)];
  const uint32_t k = rk.slots[rk.next++].k;
  rk.held.push_back(k);
  rk.held_at.push_back(now());
  // ReadyGate::release: nothing to wait for, or the oldest has waited the hold limit.
  const bool all = grouped_ == 0 || cycle_ns_ <= 0 || now() >= rk.held_at.front() + cycle_ns_;
  gate_release(r, all);
  next_arrival(r);
}

void Simulator::gate_release(int r, bool all) {
  Rank& rk = ranks_[static_cast<size_t>(r)];
  std::vector<uint32_t> out;
  if (all) {
    out = std::move(rk.held);
    rk.held.clear();
    rk.held_at.clear();
  } else {
    for (uint32_t k : rk.held) mark_[k] = 1;
    std::vector<uint32_t> keep;
    std::vector<int64_t> keep_at;
    for (size_t i = 0; i < rk.held.size(); ++i) {
      const uint32_t k = rk.held[i];
      bool go = true;
      if (const auto& g = group_of_[k]) {
        for (uint32_t m : *g) {
          if (m != k && !mark_[m] && !rk.pending[m]) go = false;
        }
      }
      if (go) {
        out.push_back(k);
      } else {
        keep.push_back(k);
        keep_at.push_back(rk.held_at[i]);
      }
    }
    for (uint32_t k : rk.held) mark_[k] = 0;
    rk.held = std::move(keep);
    rk.held_at = std::move(keep_at);
  }
  if (!rk.held.empty()) push(rk.held_at.front() + cycle_ns_, Kind::kGateDue, r, 0, ++rk.gate_gen);
  if (!out.empty()) announce(r, out);
}

void Simulator::announce(int r, const std::vector<uint32_t>& ks) {
  Rank& rk = ranks_[static_cast<size_t>(r)];
  coord::Ready ready;
  ready.evictions_seen = rk.evictions_seen;
  ready.schedule_seen = rk.schedule_seen;
  ready.entries.reserve(ks.size());
  for (uint32_t k : ks) {
    coord::ReadyEntry e;
    e.dim0 = tensors_[k].numel;
    if (id_of_k_[k] != kNoId && rk.described[k]) {
      e.id = id_of_k_[k];
    } else {
      coord::TensorRequest t;
      t.name = tensors_[k].name;
      t.op = ReduceOp::kAverage;
      t.shape = {tensors_[k].numel};
      e.full = std::move(t);
    }
    rk.described[k] = 1;
    rk.pending[k] = 1;
    ready.entries.push_back(std::move(e));
  }
  send(r, std::move(ready));
}

void Simulator::send(int r, coord::Message m) {
  Rank& rk = ranks_[static_cast<size_t>(r)];
  std::uniform_int_distribution<int64_t> j(0, latency_ns_ / 2);
  const int64_t t = std::max(now() + latency_ns_ + j(jitter_), rk.last_at_coord + 1);
  rk.last_at_coord = t;
  push(t, Kind::kToCoord, r, park(std::move(m)));
}

void Simulator::learn(const std::vector<uint32_t>& ks) {
  // ReadyGate::learn: a plan of one tensor leaves it in no group.
  if (ks.size() < 2) {
    for (uint32_t k : ks) {
      if (group_of_[k]) --grouped_;
      group_of_[k].reset();
    }
    return;
  }
  if (group_of_[ks.front()] && *group_of_[ks.front()] == ks) return;
  auto g = std::make_shared<const std::vector<uint32_t>>(ks);
  for (uint32_t k : ks) {
    if (!group_of_[k]) ++grouped_;
    group_of_[k] = g;
  }
}

void Simulator::deliver_batch(const coord::PlanBatch& b) {
  for (const coord::IdAssignment& a : b.assignments) {
    auto it = k_of_name_.find(a.name);
    if (it == k_of_name_.end()) continue;
    if (a.id >= k_of_id_.size()) k_of_id_.resize(a.id + 1, kNoId);
    k_of_id_[a.id] = it->second;
    id_of_k_[it->second] = a.id;
  }
  std::vector<uint32_t> ks;
  for (const coord::Plan& p : b.plans) {
    ks.clear();
    for (uint32_t id : p.ids) {
      if (id < k_of_id_.size() && k_of_id_[id] != kNoId) ks.push_back(k_of_id_[id]);
    }
    if (p.kind != coord::PlanKind::kAllreduce) continue;
    for (uint32_t k : ks) {
      ++rounds_run_[k];
      for (Rank& rk : ranks_) rk.pending[k] = 0;
    }
    learn(ks);
  }
  for (uint32_t id : b.evicted) {
    if (id >= k_of_id_.size() || k_of_id_[id] == kNoId) continue;
    const uint32_t k = std::exchange(k_of_id_[id], kNoId);
    id_of_k_[k] = kNoId;
    for (Rank& rk : ranks_) rk.described[k] = 0;
  }
  if (!b.evicted.empty()) {
    for (auto& g : group_of_) g.reset();
    grouped_ = 0;
  }
  for (Rank& rk : ranks_) rk.evictions_seen += b.evicted.size();
  if (b.schedule) take_schedule(*b.schedule);
}


}  // namespace quorum::bench::sim
