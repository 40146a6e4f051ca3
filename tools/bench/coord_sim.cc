// The simulation behind `quorum-bench coordinator`: a discrete-event loop on a virtual clock.
// Rank 0's side is the real CoordinatorService, called as coordinator/coordinator_server.cc
// calls it (heard, then on_ready / on_fast_report / on_fast_exit; on_timer at deadline(); on_tick
// every second); the ranks' side follows runtime/engine_plans.cc, ready_gate.cc and
// engine_fast.cc closely enough that rank 0 receives what real engines would send it.
#include "tools/bench/coord_sim.h"

#include <time.h>

#include "tools/bench/coord_sim_model.h"

namespace quorum::bench {
namespace sim {
namespace {

// What one clock_gettime pair costs, so it can be taken off every measured call.
int64_t timer_overhead_ns() {
  std::vector<int64_t> d(2001);
  for (auto& x : d) {
    const int64_t a = thread_cpu_ns();
    x = thread_cpu_ns() - a;
  }
  std::nth_element(d.begin(), d.begin() + 1000, d.end());
  return d[1000];
}

}  // namespace

int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}


Simulator::Simulator(const CoordSimOptions& o, const std::vector<SimTensor>& tensors)
    : opt_(o),
      tensors_(tensors),
      n_(o.ranks),
      t_count_(static_cast<int>(tensors.size())),
      step_ns_(static_cast<int64_t>(o.step_ms * 1e6)),
      skew_ns_(static_cast<int64_t>(o.skew_us * 1e3)),
      gap_ns_(static_cast<int64_t>(o.swap_gap_us * 1e3)),
      latency_ns_(static_cast<int64_t>(o.latency_us * 1e3)),
      cycle_ns_(static_cast<int64_t>(o.cycle_ms * 1e6)),
      // Recursive doubling: log2(N) latencies for the ranks' own agreement allreduce.
      agree_ns_(std::max<int64_t>(1, latency_ns_) *
                std::max(1, static_cast<int>(std::ceil(std::log2(std::max(2, o.ranks)))))),
      jitter_(splitmix(o.seed ^ 0x5eed)) {
  coord::ServiceOptions so;  // runtime/runtime.cc's defaults, QUORUM_SYNC_MODE=auto
  so.size = n_;
  so.cycle_time = std::chrono::nanoseconds(cycle_ns_);
  so.fast_path = o.fast_path;
  so.policy.automatic = true;
  so.policy.size = n_;
  so.policy.quorum = n_ / 2 + 1;
  so.log = [this](const std::string& m) {
    if (result_.log.size() < 100) result_.log.push_back(m);
  };
  service_ = std::make_unique<coord::CoordinatorService>(so);
  ranks_.resize(static_cast<size_t>(n_));
  for (Rank& r : ranks_) {
    r.pending.assign(tensors.size(), 0);
    r.described.assign(tensors.size(), 0);
  }
  for (int k = t_count_ - 1; k >= 0; --k) backward_.push_back(static_cast<uint32_t>(k));
  for (int k = 0; k < t_count_; ++k) k_of_name_[tensors[static_cast<size_t>(k)].name] = k;
  id_of_k_.assign(tensors.size(), kNoId);
  rounds_run_.assign(tensors.size(), 0);
  group_of_.resize(tensors.size());
  mark_.assign(tensors.size(), 0);
  result_.steps.resize(static_cast<size_t>(opt_.steps));
  overhead_ns_ = timer_overhead_ns();
}

uint64_t Simulator::park(coord::Message m) {
  if (free_slots_.empty()) {
    parked_.push_back(std::move(m));
    return parked_.size() - 1;
  }
  uint64_t slot = free_slots_.back();
  free_slots_.pop_back();
  parked_[slot] = std::move(m);
  return slot;
}

size_t Simulator::encoded_size(const coord::Message& m) {
  wire_.clear();
  coord::encode(m, wire_);
  return wire_.size();
}


// --- rank 0 ---

void Simulator::timed(const std::function<std::vector<coord::Outgoing>()>& call) {
  const int64_t a = thread_cpu_ns();
  std::vector<coord::Outgoing> out = call();
  const int64_t b = thread_cpu_ns();
  window(now()).cpu_us += static_cast<double>(std::max<int64_t>(0, b - a - overhead_ns_)) / 1e3;
  dispatch(std::move(out));
}

// CoordinatorServer::on_message: heard, then the handler for the message's type.
std::vector<coord::Outgoing> Simulator::serve(int r, const coord::Message& m, Clock::time_point t) {
  service_->heard(r, t);
  if (auto* ready = std::get_if<coord::Ready>(&m)) return service_->on_ready(r, *ready, t);
  if (auto* report = std::get_if<coord::FastReport>(&m)) {
    return service_->on_fast_report(r, *report, t);
  }
  if (auto* exit = std::get_if<coord::FastExit>(&m)) return service_->on_fast_exit(r, *exit, t);
  return {};
}

void Simulator::on_messages(const Event& first) {
  group_.assign(1, first);
  // Replies land after `until`, and what the ranks do before it reaches rank 0 after it: their
  // events in between can wait until the group is served. Rank 0's own timer and tick cannot.
  const int64_t until = first.t + std::max<int64_t>(1, latency_ns_);
  aside_.clear();
  while (!events_.empty() && events_.top().t < until) {
    const Kind k = events_.top().kind;
    if (k == Kind::kTimer || k == Kind::kTick) break;
    (k == Kind::kToCoord ? group_ : aside_).push_back(events_.top());
    events_.pop();
  }
  for (const Event& e : aside_) events_.push(e);  // seq kept: they run in their order
  if (replies_.size() < group_.size()) replies_.resize(group_.size());
  size_t served = 0;
  const int64_t a = thread_cpu_ns();
  for (; served < group_.size(); ++served) {
    const Event& e = group_[served];
    if (served > 0) {  // the timer is due first: the rest waits for it
      const std::optional<Clock::time_point> d = service_->deadline();
      if (d && *d <= at(e.t)) break;
    }
    replies_[served] = serve(e.rank, parked_[e.a], at(e.t));
  }
  const int64_t b = thread_cpu_ns();
  window(first.t).cpu_us += static_cast<double>(std::max<int64_t>(0, b - a - overhead_ns_)) / 1e3;
  for (size_t i = 0; i < served; ++i) {
    const Event& e = group_[i];
    now_ = e.t;
    const coord::Message& m = parked_[e.a];
    SimStep& st = window(e.t);
    ++st.msgs_in;
    st.bytes_in += encoded_size(m);
    if (std::holds_alternative<coord::Ready>(m)) ++st.readies_in;
    if (std::holds_alternative<coord::FastReport>(m)) ++st.reports_in;
    if (std::holds_alternative<coord::FastExit>(m)) ++st.exits_in, ++result_.fast_exits;
    parked_[e.a] = coord::Message{};
    free_slots_.push_back(e.a);
    dispatch(std::move(replies_[i]));
    replies_[i].clear();
  }
  for (size_t i = served; i < group_.size(); ++i) events_.push(group_[i]);  // seq kept: in order
}

// CoordinatorServer::dispatch: a kAllRanks message is a frame to every live rank.
void Simulator::dispatch(std::vector<coord::Outgoing> out) {
  for (coord::Outgoing& o : out) {
    size_t live = 1;
    if (o.rank == coord::kAllRanks) {
      live = 0;
      for (int r = 0; r < n_; ++r) live += service_->departed(r) ? 0 : 1;
    }
    SimStep& st = window(now());
    const size_t bytes = encoded_size(o.message);
    if (std::holds_alternative<coord::Heartbeat>(o.message)) {
      result_.heartbeats_out_per_s += static_cast<double>(live);
      result_.heartbeat_bytes_out_per_s += static_cast<double>(live * bytes);
      continue;
    }
    st.msgs_out += live;
    st.bytes_out += live * bytes;
    if (auto* b = std::get_if<coord::PlanBatch>(&o.message)) {
      st.plans += b->plans.size();
      if (b->schedule && result_.first_schedule_step < 0) {
        result_.first_schedule_step = static_cast<int>((now() - t0_) / step_ns_);
      }
    }
    push(now() + latency_ns_, Kind::kDeliver, o.rank, park(std::move(o.message)));
  }
  if (auto d = service_->deadline()) {
    const int64_t due = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            d->time_since_epoch()).count();
    push(std::max(due, now()), Kind::kTimer, 0, 0, ++timer_gen_);
  }
}

void Simulator::on_deliver(uint64_t slot) {
  coord::Message m = std::move(parked_[slot]);
  free_slots_.push_back(slot);
  if (auto* b = std::get_if<coord::PlanBatch>(&m)) {
    deliver_batch(*b);
  } else if (auto* abort = std::get_if<coord::FastAbort>(&m)) {
    if (fast_.live && !fast_.done && abort->version == fast_.version) {
      // Engine::on_fast_abort: every rank leaves at its next agreement, without a FastExit.
      fast_.abort_at = now();
      for (Rank& rk : ranks_) rk.exit_sent = true;
      ++fast_.gen;
      agree();
    }
  }
}

SimResult Simulator::run() {
  const auto wall0 = std::chrono::steady_clock::now();
  for (int r = 0; r < n_; ++r) {
    ensure_step(r, 0);
    push(ranks_[static_cast<size_t>(r)].slots[0].t, Kind::kArrival, r, 0,
         ++ranks_[static_cast<size_t>(r)].arrival_gen);
    service_->heard(r, at(t0_));
  }
  const int64_t end = t0_ + opt_.steps * step_ns_;
  for (int64_t t = t0_ + kTickNs / 2; t < end; t += kTickNs) push(t, Kind::kTick, 0);
  const size_t heartbeat_bytes = encoded_size(coord::Heartbeat{});
  while (!events_.empty()) {
    Event e = events_.top();
    events_.pop();
    now_ = e.t;
    Rank* rk = e.rank >= 0 && e.rank < n_ ? &ranks_[static_cast<size_t>(e.rank)] : nullptr;
    switch (e.kind) {
      case Kind::kArrival:
        if (!rk->fast && e.gen == rk->arrival_gen) on_arrival(e.rank);
        break;
      case Kind::kGateDue:
        if (!rk->fast && e.gen == rk->gate_gen && !rk->held.empty()) gate_release(e.rank, true);
        break;
      case Kind::kToCoord:
        on_messages(e);
        break;
      case Kind::kTimer:
        if (e.gen == timer_gen_) timed([&] { return service_->on_timer(at(now())); });
        break;
      case Kind::kDeliver:
        on_deliver(e.a);
        break;
      case Kind::kAgreement:
        if (fast_.live && !fast_.done && e.gen == fast_.gen) on_agreement();
        break;
      case Kind::kLeave:
        if (fast_.live && !fast_.done && e.gen == fast_.gen) on_leave(e.rank);
        break;
      case Kind::kTick: {
        // Every engine sends a heartbeat about once a second whatever else it sends
        // (runtime/engine.cc), and the server's tick sends one to every rank.
        for (int r = 0; r < n_; ++r) service_->heard(r, at(now()));
        result_.heartbeats_in_per_s += n_;
        result_.heartbeat_bytes_in_per_s += static_cast<double>(n_ * heartbeat_bytes);
        const int64_t a = thread_cpu_ns();
        std::vector<coord::Outgoing> out = service_->on_tick(at(now()));
        tick_cpu_.push_back(static_cast<double>(thread_cpu_ns() - a - overhead_ns_) / 1e3);
        dispatch(std::move(out));
        break;
      }
    }
  }
  result_.virtual_s = static_cast<double>(end - t0_) / 1e9;
  const double ticks = std::max<double>(1, static_cast<double>(tick_cpu_.size()));
  result_.heartbeats_in_per_s /= ticks;
  result_.heartbeats_out_per_s /= ticks;
  result_.heartbeat_bytes_in_per_s /= ticks;
  result_.heartbeat_bytes_out_per_s /= ticks;
  if (!tick_cpu_.empty()) {
    std::nth_element(tick_cpu_.begin(), tick_cpu_.begin() + tick_cpu_.size() / 2, tick_cpu_.end());
    result_.tick_cpu_us = tick_cpu_[tick_cpu_.size() / 2];
  }
  result_.schedules_issued = service_->schedules_issued();
  result_.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  return std::move(result_);
}

}  // namespace sim

SimResult simulate_coordinator(const CoordSimOptions& options,
                               const std::vector<SimTensor>& tensors) {
  return sim::Simulator(options, tensors).run();
}

}  // namespace quorum::bench
