// The coordinator's brain, without sockets: it takes readiness messages from ranks, assigns ids
// to names, validates each round across ranks, holds ready allreduces for fusion (until their
// learned bucket is complete, at most the cycle time, and only while more are on their way),
// and emits sequence-numbered plan batches that every rank executes in order. It runs the sync
// policy: in bounded mode a Sum/Average round may run with a quorum of ranks while the missing
// ones stand in with zeros, within the staleness bound; it keeps count of every rank's late
// gradients (carries) so plans say when counts must travel with the data, and folds carries at
// flush(). It turns a departed rank into error plans so nothing waits for it.
// Single-threaded: the TCP server (or a test) calls it from one thread.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "coordinator/bucket_learner.h"
#include "coordinator/cost_model.h"
#include "coordinator/messages.h"
#include "coordinator/readiness_table.h"
#include "coordinator/schedule_learner.h"
#include "coordinator/sync_policy.h"

namespace quorum::coord {

struct ServiceOptions {
  int size = 1;
  size_t fusion_threshold = 64u << 20;
  // Larger tensors are never fused (a plan, and a learned bucket, of their own).
  size_t fusion_max_tensor = 256u << 10;
  Clock::duration cycle_time = std::chrono::milliseconds(1);
  size_t bucket_bytes = 1u << 20;  // initial target of learned buckets (capped by the threshold)
  bool adapt_buckets = true;       // retarget buckets from the fitted cost model
  // Allreduce algorithm for every host plan; nullopt = chosen per plan by the cost model (CUDA
  // plans run NCCL's own, which is topology-aware: a pinned hierarchical runs native there).
  std::optional<Algorithm> algorithm;
  // The cost model's priors, the job's host shape, and which algorithms auto may choose.
  CostModelOptions model;
  // Sync policy: mode (fixed or auto), quorum, thresholds, window.
  PolicyOptions policy;
  int staleness = 2;  // s: a missing rank may fall at most this many rounds behind
  // Names with an id (and each rank's description of them). Past it, the least recently used
  // idle ids are evicted: announced in the next batch, forgotten by each rank when it has seen
  // that (Ready::evictions_seen), then reused.
  size_t cache_capacity = 4096;
  // Stall inspector: warn when some ranks submitted a tensor and others have not for this
  // long; fail the tensor everywhere after the abort time (0 = never).
  Clock::duration stall_warning = std::chrono::seconds(60);
  Clock::duration stall_abort = Clock::duration::zero();
  // A rank silent this long (no message, not even a heartbeat) is declared failed.
  Clock::duration failure_timeout = std::chrono::seconds(30);
  // Steady-state fast path: once a step's plans repeat, every rank gets them as a Schedule.
  bool fast_path = true;
  // Where mode switches and stalls are reported (rank 0's log); may be empty.
  std::function<void(const std::string&)> log;
};

// A message for one rank, or for every rank that has not departed (rank == kAllRanks).
inline constexpr int kAllRanks = -1;
struct Outgoing {
  int rank = kAllRanks;
  Message message;
};

class CoordinatorService {
 public:
  explicit CoordinatorService(ServiceOptions options);

  std::vector<Outgoing> on_ready(int rank, const Ready& ready, Clock::time_point now);
  // An orderly departure: plans already due are flushed first, then the rank gets GoodbyeAck.
  std::vector<Outgoing> on_goodbye(int rank, Clock::time_point now);
  // A rank's connection dropped without Goodbye.
  std::vector<Outgoing> on_lost(int rank, const std::string& why, Clock::time_point now);
  // A rank called flush(); when all have, carries are folded and every rank gets kFlushDone.
  std::vector<Outgoing> on_flush(int rank, Clock::time_point now);
  // Called at or after deadline(): emits plans held for fusion or waiting for a quorum grace.
  std::vector<Outgoing> on_timer(Clock::time_point now);
  // Called periodically (about once a second): heartbeats out, silent ranks declared failed,
  // the stall inspector.
  std::vector<Outgoing> on_tick(Clock::time_point now);
  // Fast path (coordinator_fast.cc): a rank leaves or refuses a schedule; every rank is told to
  // leave it too. A rank's batched arrival samples of fast steps feed the sync policy.
  std::vector<Outgoing> on_fast_exit(int rank, const FastExit& exit, Clock::time_point now);
  std::vector<Outgoing> on_fast_report(int rank, const FastReport& report, Clock::time_point now);
  // The schedule ranks may be running now, if any, and how many were handed out.
  std::optional<uint64_t> live_schedule() const { return live_; }
  uint64_t schedules_issued() const { return schedule_version_; }
  // Any message from `rank` (heartbeats included) proves it alive.
  void heard(int rank, Clock::time_point now) { last_heard_[static_cast<size_t>(rank)] = now; }

  // When held tensors must go out, if any are held.
  std::optional<Clock::time_point> deadline() const;
  bool all_departed() const;
  bool departed(int rank) const { return departed_[static_cast<size_t>(rank)]; }
  uint64_t plans_emitted() const { return next_seq_; }
  const BucketLearner& learner() const { return learner_; }
  const CostModel& cost_model() const { return model_; }
  SyncMode mode() const { return policy_.mode(); }
  // The sync policy's straggler waiting share of step time over its window.
  double waiting_fraction() const { return policy_.waiting_fraction(); }
  void set_bucket_bytes(size_t bytes);

  // A timed collective (from rank 0's engine): refits the model and, when allowed, retargets
  // learned buckets so that per-message latency stays a small part of each bucket's time.
  // A hierarchical one also brings the time of its two levels, each fitted on its own.
  void observe(Algorithm algorithm, size_t bytes, double seconds, double intra_seconds = 0,
               double inter_seconds = 0);

 private:
  // Per tensor: how far each rank's framework has got, and its late gradients.
  struct TensorState {
    uint64_t rounds_run = 0;           // rounds completed (run, or failed)
    std::vector<uint64_t> submitted;   // per rank: rounds its framework has enqueued
    std::vector<uint32_t> carry;       // per rank: late gradients not yet folded in
    std::vector<uint64_t> carry_from;  // per rank: the round of its oldest carried gradient
    bool boundable = false;            // a Sum/Average allreduce whose first round ran
    TensorRequest request;             // the description of its last completed round
    uint64_t stale_wait_round = ~0ull; // round for which a staleness wait was reported
    std::vector<uint32_t> skip;        // per rank: requests still to come for aborted rounds
    uint64_t last_use = 0;             // use_clock_ at its latest submission
  };

  uint32_t id_for(const std::string& name);
  TensorState& state(uint32_t id);
  void fail_id(uint32_t id, StatusCode code, const std::string& message);
  void depart(int rank, const std::string& reason, Clock::time_point now);
  // A round left the readiness table: bookkeeping, then hold it for planning.
  void round_done(RoundOutcome outcome);
  // Bounded mode: completes open rounds that have their quorum, past the grace, within s.
  void complete_bounded(Clock::time_point now);
  void note_pilot_arrival(uint32_t id, uint64_t round, int rank, Clock::time_point now);
  // Asks the policy; a switch is logged and announced with the next plan.
  void decide_mode();
  void maybe_flush_all();
  // The id cache: evicts least recently used idle ids while more than the capacity have one;
  // a rank's acknowledgement lets go of its descriptions; ids every rank has let go are reused.
  void evict_if_over_capacity();
  bool idle(uint32_t id) const;
  // No open round, and every rank caught up: no late request, carry or skip still to come.
  bool settled(uint32_t id) const;
  // Fast path (coordinator_fast.cc).
  void end_schedule(const std::string& reason);  // queues FastAbort for every rank
  // After the batch's plans are observed: hands out the schedule with it when the step repeats.
  void maybe_issue_schedule(PlanBatch& batch);
  bool may_schedule(const std::vector<ScheduleEntry>& entries) const;
  void acknowledge_evictions(int rank, uint64_t seen);
  std::vector<Outgoing> flush(Clock::time_point now, bool force);

  ServiceOptions options_;
  std::unordered_map<std::string, uint32_t> ids_by_name_;
  std::vector<std::string> names_;
  std::vector<std::unordered_map<uint32_t, TensorRequest>> known_;  // per rank, by id
  std::unordered_map<uint32_t, TensorState> tensors_;
  ReadinessTable table_;
  BucketLearner learner_;
  CostModel model_;
  SyncPolicy policy_;
  std::vector<ReadyTensor> held_;           // validated, waiting to be planned
  std::vector<IdAssignment> assignments_;   // not yet announced
  std::vector<Plan> pending_plans_;         // errors, folds: out with the next batch
  std::string mode_reason_;                 // a switch not yet announced in a plan
  std::optional<Clock::time_point> quorum_deadline_;  // earliest bounded grace expiry
  // The pilot tensor whose rounds feed the policy, and its rounds' arrivals by rank.
  std::optional<uint32_t> pilot_;
  std::map<uint64_t, std::vector<std::optional<Clock::time_point>>> pilot_arrivals_;
  std::vector<bool> flush_requested_;
  std::unordered_map<uint32_t, Clock::time_point> stall_warned_;  // open round -> its start
  std::vector<bool> departed_;
  std::vector<std::optional<Clock::time_point>> last_heard_;
  std::string departure_;                   // why the job can no longer run collectives
  uint64_t next_seq_ = 0;
  // Id cache (ServiceOptions::cache_capacity).
  uint64_t use_clock_ = 0;
  // Announced, not yet forgotten by every rank, in eviction order: the last is eviction number
  // evictions_, the first number evictions_ - size() + 1.
  std::deque<uint32_t> retiring_;
  std::vector<uint64_t> evictions_seen_;    // per rank: evictions it has acknowledged
  uint64_t evictions_ = 0;                  // evictions announced or about to be
  std::vector<uint32_t> evicted_;           // not yet announced
  std::vector<uint32_t> free_ids_;          // forgotten everywhere: reusable
  size_t evict_events_;                     // new names and completed rounds since the last scan
  // Fast path.
  ScheduleLearner steps_;
  std::optional<uint64_t> live_;            // the schedule handed out and not yet ended
  std::unordered_set<uint32_t> scheduled_ids_;  // its tensors: never evicted while it lives
  uint64_t schedule_version_ = 0;
  std::vector<Outgoing> fast_out_;          // FastAbort messages, out with the next flush
  std::map<uint64_t, std::vector<std::optional<FastSample>>> fast_samples_;  // step -> per rank

 public:
  // For tests and quorum-info: names holding an id now, and ids still being forgotten.
  size_t cached_names() const { return ids_by_name_.size(); }
  size_t retiring_ids() const { return retiring_.size(); }
  uint64_t evictions() const { return evictions_; }
};

}  // namespace quorum::coord
