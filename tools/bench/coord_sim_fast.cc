// The engines on a schedule, after runtime/engine_fast.cc: they agree among themselves, report
// arrival samples every few steps, and leave together when one of them must.
#include "tools/bench/coord_sim_model.h"

namespace quorum::bench::sim {

// --- the fast path: every rank takes the schedule on receipt (all are quiescent and in sync) ---

void Simulator::take_schedule(const coord::Schedule& s) {
  Fast f;
  f.live = true;
  f.version = s.version;
  f.reports = s.reports;
  f.gen = fast_.gen + 1;
  f.rel_of_k.assign(tensors_.size(), -1);
  for (const coord::ScheduleEntry& e : s.entries) {
    std::vector<uint32_t> ks;
    for (uint32_t id : e.ids) {
      if (id < k_of_id_.size() && k_of_id_[id] != kNoId) ks.push_back(k_of_id_[id]);
    }
    f.entries.push_back(std::move(ks));
  }
  const int entries = static_cast<int>(f.entries.size());
  for (int e = 0; e < entries; ++e) {
    for (uint32_t k : f.entries[static_cast<size_t>(e)]) f.rel_of_k[k] = e;
  }
  // A step starts at the entry backward completes first, which need not hold backward's first
  // gradient: a bucket the coordinator held for its members can follow a tensor planned alone.
  double first_done = std::numeric_limits<double>::infinity();
  for (int e = 0; e < entries; ++e) {
    double done = 0;
    for (uint32_t k : f.entries[static_cast<size_t>(e)]) done = std::max(done, tensors_[k].ready_at);
    if (done < first_done) first_done = done, f.b0 = e;
  }
  for (int& rel : f.rel_of_k) {
    if (rel >= 0) rel = (rel - f.b0 + entries) % entries;
  }
  const int start = static_cast<int>(s.start) % entries;
  const uint32_t due = f.entries[static_cast<size_t>(start)].front();
  f.step = static_cast<int>(rounds_run_[due]);
  f.cursor = (start - f.b0 + entries) % entries;
  f.last_end = now();
  fast_ = std::move(f);
  for (Rank& rk : ranks_) {
    // Engine::on_schedule: what the gate holds and what was announced since the coordinator
    // handed this out (it plans none of it: Ready::schedule_seen) now wait on the schedule.
    rk.fast = true;
    ++rk.arrival_gen;
    ++rk.gate_gen;
    rk.held.clear();
    rk.held_at.clear();
    std::fill(rk.pending.begin(), rk.pending.end(), 0);
    rk.schedule_seen = s.version;
    rk.samples.clear();
    rk.reported = 0;
    rk.fast_steps = 0;
    rk.exit_sent = false;
  }
  if (fast_.step >= opt_.steps) {
    fast_.done = true;
    return;
  }
  begin_step(fast_.step, fast_.cursor);
  agree();
}

void Simulator::begin_step(int s, int j0) {
  Fast& f = fast_;
  const size_t entries = f.entries.size();
  f.prefix.assign(static_cast<size_t>(n_) * entries, kNever);
  f.out_of_order.assign(static_cast<size_t>(n_), {});
  f.foreign_at.assign(static_cast<size_t>(n_), kNever);
  if (j0 == 0) result_.steps[static_cast<size_t>(s)].on_schedule = true;
  std::vector<int64_t> complete(entries);
  std::vector<size_t> count(entries);
  for (int r = 0; r < n_; ++r) {
    ensure_step(r, s);
    const Rank& rk = ranks_[static_cast<size_t>(r)];
    std::fill(complete.begin(), complete.end(), kNever);
    std::fill(count.begin(), count.end(), 0);
    // Engine::take_fast at every arrival: out of order while a later entry's tensor is held
    // and the first incomplete entry is before it.
    int first = j0, latest = -1;
    int64_t since = 0;
    bool in = false;
    auto& spans = f.out_of_order[static_cast<size_t>(r)];
    for (const Arrival& a : rk.slots) {
      const int rel = f.rel_of_k[a.k];
      if (rel < 0) {
        f.foreign_at[static_cast<size_t>(r)] = std::min(f.foreign_at[static_cast<size_t>(r)], a.t);
        continue;
      }
      if (rel < j0) continue;  // planned on the coordinator path before the schedule
      if (++count[static_cast<size_t>(rel)] == f.entries[static_cast<size_t>(rel)].size()) {
        complete[static_cast<size_t>(rel)] = a.t;
      }
      while (first < static_cast<int>(entries) &&
             count[static_cast<size_t>(first)] == f.entries[static_cast<size_t>(first)].size()) {
        ++first;
      }
      latest = std::max(latest, rel);
      const bool ooo = latest > first;
      if (ooo && !in) since = a.t;
      if (!ooo && in) spans.push_back({since, a.t});
      in = ooo;
    }
    if (in) spans.push_back({since, kNever});
    int64_t* p = &f.prefix[static_cast<size_t>(r) * entries];
    int64_t run = 0;
    for (size_t j = static_cast<size_t>(j0); j < entries; ++j) p[j] = run = std::max(run, complete[j]);
  }
}

// Each rank joins the agreement at the cursor when its entry is complete here (voting how many
// entries from the cursor are), or votes 0 when it leaves; the agreement ends at the last one.
void Simulator::agree() {
  Fast& f = fast_;
  const size_t entries = f.entries.size();
  const size_t c = static_cast<size_t>(f.cursor);
  f.enter.assign(static_cast<size_t>(n_), 0);
  int64_t end = f.last_end;
  int votes = std::numeric_limits<int>::max();
  for (int r = 0; r < n_; ++r) {
    const auto ur = static_cast<size_t>(r);
    const int64_t* p = &f.prefix[ur * entries];
    const int64_t due = p[c];
    int64_t leave = kNever;
    bool own = false;
    if (f.foreign_at[ur] != kNever) {
      leave = std::max(f.foreign_at[ur], f.last_end);
      own = true;
    }
    for (const auto& [from, to] : f.out_of_order[ur]) {
      const int64_t t = std::max(from + cycle_ns_, f.last_end);
      if (t < std::min(to, due)) {
        if (t < leave) leave = t, own = true;
        break;
      }
    }
    if (f.abort_at != kNever && std::max(f.abort_at, f.last_end) < leave) {
      leave = std::max(f.abort_at, f.last_end);
      own = false;
    }
    if (due == kNever && leave == kNever) leave = f.last_end, own = true;  // never complete here
    int vote = 0;
    if (leave <= due) {
      f.enter[ur] = leave;
      if (own && !ranks_[ur].exit_sent) push(leave, Kind::kLeave, r, 0, f.gen);
    } else {
      f.enter[ur] = std::max(f.last_end, due);
      vote = static_cast<int>(std::upper_bound(p + c, p + entries, f.enter[ur]) - (p + c));
    }
    end = std::max(end, f.enter[ur]);
    votes = std::min(votes, vote);
  }
  f.votes = votes;
  push(end + agree_ns_, Kind::kAgreement, 0, 0, f.gen);
}

void Simulator::on_leave(int r) {
  Rank& rk = ranks_[static_cast<size_t>(r)];
  if (rk.exit_sent) return;
  rk.exit_sent = true;
  if (fast_.reports && !rk.samples.empty()) {
    send(r, coord::FastReport{fast_.version, rk.reported, rk.samples});
    rk.reported += rk.samples.size();
    rk.samples.clear();
  }
  send(r, coord::FastExit{fast_.version, "the tensor order changed (simulated)"});
}

void Simulator::on_agreement() {
  Fast& f = fast_;
  if (f.votes <= 0) return fall_back();
  const int entries = static_cast<int>(f.entries.size());
  if ((f.cursor + f.b0) % entries == 0) {  // the schedule's entry 0: one sample per fast step
    for (int r = 0; r < n_; ++r) {
      Rank& rk = ranks_[static_cast<size_t>(r)];
      if (!f.reports) continue;
      rk.samples.push_back({now(), now() - f.enter[static_cast<size_t>(r)]});
      // Engine::watch_fast_agreement: every kSamplesPerReport-th fast step, at the rank's offset.
      if ((++rk.fast_steps + static_cast<uint64_t>(r)) % kSamplesPerReport == 0) {
        const size_t count = rk.samples.size();
        send(r, coord::FastReport{f.version, rk.reported, std::move(rk.samples)});
        rk.reported += count;
        rk.samples.clear();
      }
    }
  }
  SimStep& st = result_.steps[static_cast<size_t>(f.step)];
  for (int i = 0; i < f.votes; ++i) {
    const auto& ks = f.entries[static_cast<size_t>((f.cursor + f.b0) % entries)];
    for (uint32_t k : ks) ++rounds_run_[k];
    learn(ks);  // the engine's execute() teaches the gate from fast entries too
    ++st.fast_entries;
    ++f.cursor;
  }
  f.last_end = now();
  if (f.cursor >= entries) {
    if (++f.step >= opt_.steps) {
      f.done = true;
      return;
    }
    f.cursor = 0;
    begin_step(f.step, 0);
  }
  agree();
}

void Simulator::fall_back() {
  Fast& f = fast_;
  const int entries = static_cast<int>(f.entries.size());
  result_.steps[static_cast<size_t>(f.step)].on_schedule = false;
  ++result_.fallbacks;
  for (int r = 0; r < n_; ++r) {
    Rank& rk = ranks_[static_cast<size_t>(r)];
    if (f.reports && !rk.samples.empty()) {
      send(r, coord::FastReport{f.version, rk.reported, rk.samples});
      rk.reported += rk.samples.size();
      rk.samples.clear();
    }
    // Engine::fall_back: what it holds, in the schedule's order from the cursor.
    std::vector<std::pair<int, uint32_t>> held;
    rk.next = 0;
    for (size_t i = 0; i < rk.slots.size(); ++i) {
      const Arrival& a = rk.slots[i];
      if (a.t > now()) continue;
      rk.next = std::max(rk.next, i + 1);
      const int rel = f.rel_of_k[a.k];
      const int turn = rel < 0 ? entries : rel;
      if (rel < 0 || rel >= f.cursor) held.push_back({turn, a.k});
    }
    std::stable_sort(held.begin(), held.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<uint32_t> ks;
    for (const auto& h : held) ks.push_back(h.second);
    rk.fast = false;
    if (!ks.empty()) announce(r, ks);
    next_arrival(r);
  }
  f.live = false;
  ++f.gen;
}


}  // namespace quorum::bench::sim
