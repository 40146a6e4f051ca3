// The coordinator's brain, without sockets: it takes readiness messages from ranks, assigns ids
// to names, validates each round across ranks, holds ready allreduces for fusion (at most the
// cycle time, and only while more of them are on their way), and emits sequence-numbered plan
// batches that every rank executes in order. It also turns a departed rank into error plans so
// nothing waits for it. Single-threaded: the TCP server (or a test) calls it from one thread.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "coordinator/bucket_learner.h"
#include "coordinator/cost_model.h"
#include "coordinator/messages.h"
#include "coordinator/readiness_table.h"

namespace quorum::coord {

struct ServiceOptions {
  int size = 1;
  size_t fusion_threshold = 64u << 20;
  Clock::duration cycle_time = std::chrono::milliseconds(1);
  size_t bucket_bytes = 1u << 20;  // initial target of learned buckets (capped by the threshold)
  bool adapt_buckets = true;       // retarget buckets from the fitted cost model
  // Allreduce algorithm for every plan; nullopt = chosen per plan by the cost model.
  std::optional<Algorithm> algorithm;
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
  // Called at or after deadline(): emits plans held for fusion.
  std::vector<Outgoing> on_timer(Clock::time_point now);

  // When held tensors must go out, if any are held.
  std::optional<Clock::time_point> deadline() const;
  bool all_departed() const;
  bool departed(int rank) const { return departed_[static_cast<size_t>(rank)]; }
  uint64_t plans_emitted() const { return next_seq_; }
  const BucketLearner& learner() const { return learner_; }
  const CostModel& cost_model() const { return model_; }
  void set_bucket_bytes(size_t bytes);

  // A timed collective (from rank 0's engine): refits the model and, when allowed, retargets
  // learned buckets so that per-message latency stays a small part of each bucket's time.
  void observe(Algorithm algorithm, size_t bytes, double seconds);

 private:
  uint32_t id_for(const std::string& name);
  void fail_id(uint32_t id, StatusCode code, const std::string& message);
  void depart(int rank, const std::string& reason, Clock::time_point now);
  std::vector<Outgoing> flush(Clock::time_point now, bool force);

  ServiceOptions options_;
  std::unordered_map<std::string, uint32_t> ids_by_name_;
  std::vector<std::string> names_;
  std::vector<std::unordered_map<uint32_t, TensorRequest>> known_;  // per rank, by id
  ReadinessTable table_;
  BucketLearner learner_;
  CostModel model_;
  std::vector<ReadyTensor> held_;           // validated, waiting to be planned
  std::vector<IdAssignment> assignments_;   // not yet announced
  std::vector<Plan> error_plans_;           // not yet announced
  std::vector<bool> departed_;
  std::string departure_;                   // why the job can no longer run collectives
  uint64_t next_seq_ = 0;
};

}  // namespace quorum::coord
