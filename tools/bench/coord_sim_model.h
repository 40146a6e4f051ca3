// coord_sim_model.h — the simulator behind tools/bench/coord_sim.h, shared by its three parts:
// coord_sim.cc (set-up, rank 0 and the event loop), coord_sim_ranks.cc (the engines on the
// coordinator path) and coord_sim_fast.cc (the engines on a schedule). Internal to quorum-bench.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <cmath>
#include <limits>
#include <memory>
#include <queue>
#include <random>
#include <unordered_map>

#include "coordinator/coordinator_service.h"
#include "coordinator/messages.h"
#include "tools/bench/coord_sim.h"

namespace quorum::bench::sim {

using coord::Clock;
constexpr size_t kSamplesPerReport = 8;  // runtime/engine_fast.cc, as are the ranks' offsets
constexpr int64_t kTickNs = 1'000'000'000;
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
constexpr uint32_t kNoId = ~0u;

// Thread CPU time, for the service calls measured.
int64_t thread_cpu_ns();
// A well-mixed 64-bit hash, for seeding per-rank and per-step generators.
uint64_t splitmix(uint64_t x);

struct Arrival {
  int64_t t;
  uint32_t k;  // tensor index (forward order)
};

class Simulator {
 public:
  Simulator(const CoordSimOptions& o, const std::vector<SimTensor>& tensors);
  SimResult run();

 private:
  enum class Kind : uint8_t { kArrival, kGateDue, kToCoord, kTimer, kDeliver, kAgreement, kLeave, kTick };
  struct Event {
    int64_t t;
    uint64_t seq;
    Kind kind;
    int32_t rank;
    uint64_t a;    // message slot
    uint64_t gen;  // stale when it differs from its owner's
  };
  struct Later {
    bool operator()(const Event& x, const Event& y) const {
      return x.t != y.t ? x.t > y.t : x.seq > y.seq;
    }
  };
  struct Rank {
    int step = -1;
    std::vector<Arrival> slots;  // this step's gradients, in the order they become ready
    size_t next = 0;             // the next slot the coordinator path handles
    uint64_t arrival_gen = 0;
    bool fast = false;
    std::vector<uint32_t> held;  // readiness gate
    std::vector<int64_t> held_at;
    uint64_t gate_gen = 0;
    std::vector<uint8_t> pending;    // per tensor: announced, its plan not yet run
    std::vector<uint8_t> described;  // per tensor: its full description went out
    uint64_t schedule_seen = 0;
    uint64_t evictions_seen = 0;
    int64_t last_at_coord = 0;  // a connection delivers in order
    std::vector<coord::FastSample> samples;
    uint64_t reported = 0;
    uint64_t fast_steps = 0;  // since the schedule was taken
    bool exit_sent = false;
  };
  // The schedule the ranks run, and where their agreements are.
  struct Fast {
    bool live = false;
    bool done = false;  // the last step ran
    uint64_t version = 0;
    bool reports = false;
    std::vector<std::vector<uint32_t>> entries;  // tensor indexes, by entry
    std::vector<int> rel_of_k;                   // per tensor: its entry, counted from b0; -1 none
    int b0 = 0;                                  // the entry holding backward's first gradient
    int step = 0;
    int cursor = 0;  // relative entry due next
    int64_t last_end = 0;
    int64_t abort_at = kNever;
    uint64_t gen = 0;
    // This step, per rank: P[r*E + j] = when entries cursor..j are all ready on r; the spans in
    // which a later entry's tensor is held before the one due; a tensor outside the schedule.
    std::vector<int64_t> prefix;
    std::vector<std::vector<std::pair<int64_t, int64_t>>> out_of_order;
    std::vector<int64_t> foreign_at;
    // The agreement in flight.
    std::vector<int64_t> enter;
    int votes = 0;
  };

  int64_t now() const { return now_; }
  Clock::time_point at(int64_t t) const { return Clock::time_point(std::chrono::nanoseconds(t)); }
  SimStep& window(int64_t t) {
    int64_t s = (t - t0_) / step_ns_;
    return result_.steps[static_cast<size_t>(std::clamp<int64_t>(s, 0, opt_.steps - 1))];
  }
  void push(int64_t t, Kind kind, int rank, uint64_t a = 0, uint64_t gen = 0) {
    events_.push({t, seq_++, kind, rank, a, gen});
  }
  uint64_t park(coord::Message m);
  size_t encoded_size(const coord::Message& m);

  // Ranks.
  void ensure_step(int r, int s);
  void next_arrival(int r);
  void on_arrival(int r);
  void gate_release(int r, bool all);
  void announce(int r, const std::vector<uint32_t>& ks);
  void send(int r, coord::Message m);
  void learn(const std::vector<uint32_t>& ks);
  void deliver_batch(const coord::PlanBatch& b);
  // Fast path.
  void take_schedule(const coord::Schedule& s);
  void begin_step(int s, int j0);
  void agree();
  void on_agreement();
  void on_leave(int r);
  void fall_back();
  // Rank 0.
  // Messages reaching rank 0 within one latency of each other are handed to the service
  // back to back under one CPU-time reading (a clock_gettime of the thread clock is a system
  // call here, dearer than many a service call); their replies go out after, each at its time.
  void on_messages(const Event& first);
  std::vector<coord::Outgoing> serve(int r, const coord::Message& m, Clock::time_point t);
  void timed(const std::function<std::vector<coord::Outgoing>()>& call);
  void dispatch(std::vector<coord::Outgoing> out);
  void on_deliver(uint64_t slot);

  CoordSimOptions opt_;
  const std::vector<SimTensor>& tensors_;
  const int n_, t_count_;
  const int64_t step_ns_, skew_ns_, gap_ns_, latency_ns_, cycle_ns_, agree_ns_;
  const int64_t t0_ = int64_t{1000} * kTickNs;  // any origin: the coordinator only compares
  int64_t now_ = 0;
  uint64_t seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, Later> events_;
  std::vector<coord::Message> parked_;
  std::vector<uint64_t> free_slots_;
  std::vector<uint8_t> wire_;
  std::mt19937_64 jitter_;
  std::unique_ptr<coord::CoordinatorService> service_;
  std::vector<Rank> ranks_;
  std::vector<uint32_t> backward_;  // tensor indexes, backward order
  std::unordered_map<std::string, uint32_t> k_of_name_;
  std::vector<uint32_t> id_of_k_, k_of_id_;
  std::vector<uint64_t> rounds_run_;  // per tensor
  std::vector<std::shared_ptr<const std::vector<uint32_t>>> group_of_;
  size_t grouped_ = 0;
  std::vector<uint8_t> mark_;
  uint64_t timer_gen_ = 0;
  int64_t overhead_ns_ = 0;
  Fast fast_;
  std::vector<double> tick_cpu_;
  std::vector<Event> group_, aside_;
  std::vector<std::vector<coord::Outgoing>> replies_;
  SimResult result_;
};


}  // namespace quorum::bench::sim
