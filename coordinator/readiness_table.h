// The coordinator's record of which ranks have submitted which tensor for the current round,
// and the cross-rank validation that runs once every rank has. Pure logic: no sockets, no
// threads; the coordinator service owns one and calls it from its single thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "coordinator/messages.h"

namespace quorum::coord {

using Clock = std::chrono::steady_clock;

// A tensor every rank has submitted with agreeing descriptions.
struct ReadyTensor {
  uint32_t id = 0;
  TensorRequest request;               // rank 0's description (all agree but for allgather dim0)
  std::vector<int64_t> dim0_per_rank;  // allgather: each rank's first dimension
  size_t wire_bytes = 0;               // bytes the tensor occupies in a fusion buffer
  Clock::time_point first_arrival;
  Clock::time_point last_arrival;
  int32_t last_rank = 0;               // whose submission completed the round
  std::vector<int32_t> missing;        // bounded rounds: ranks that had not submitted
  bool counted = false;                // counts must travel with the data (set by the service)
};

// The outcome of a completed round: ready, or an error every rank's handle receives.
struct RoundOutcome {
  std::optional<ReadyTensor> ready;
  uint32_t id = 0;
  std::string error;  // set when !ready
};

// Builds the mismatch message for ranks that disagree, or "" when they agree. Exposed for tests.
std::string describe_mismatch(const std::vector<TensorRequest>& by_rank);

// Bytes `r` (with first dimension `dim0`) takes in a fusion buffer: f16/bf16 travel as f32.
size_t wire_bytes_of(const TensorRequest& r, int64_t dim0);

class ReadinessTable {
 public:
  explicit ReadinessTable(int size) : size_(size) {}

  // Records that `rank` submitted `id` (described by `request`, first dimension `dim0`). Returns
  // an outcome when this completes the round (every rank submitted), or when the submission is
  // itself invalid (the same rank twice in one round).
  std::optional<RoundOutcome> submit(int rank, uint32_t id, const TensorRequest& request,
                                     int64_t dim0, Clock::time_point now);

  // True when some allreduce has been submitted by some but not all ranks: a bucket being
  // formed may still grow, so the coordinator may hold it for up to the cycle time.
  bool has_partial_allreduce() const;

  // Removes `id`'s open round, if any.
  void take(uint32_t id) { rounds_.erase(id); }
  // Removes every incomplete round and returns their ids (used when a rank leaves).
  std::vector<uint32_t> take_all_pending();

  // Bounded rounds: the ranks that have submitted `id`'s open round (empty if none is open),
  // and when the n-th of them arrived.
  std::vector<int> present(uint32_t id) const;
  std::optional<Clock::time_point> nth_arrival(uint32_t id, int n) const;
  // When `id`'s open round got its first submission.
  std::optional<Clock::time_point> first_arrival(uint32_t id) const;
  // Ids with an open round, and the first description submitted for one.
  std::vector<uint32_t> open_ids() const;
  const TensorRequest* first_request(uint32_t id) const;
  // Completes `id`'s open round with the ranks present so far (validated among themselves);
  // the others are listed in ReadyTensor::missing.
  std::optional<RoundOutcome> complete_partial(uint32_t id, Clock::time_point now);

  size_t pending() const { return rounds_.size(); }

 private:
  struct Round {
    std::vector<std::optional<TensorRequest>> by_rank;
    std::vector<Clock::time_point> arrivals;  // in submission order
    int submitted = 0;
    Clock::time_point first_arrival;
  };
  std::optional<RoundOutcome> finish(uint32_t id, Round round, int last_rank,
                                     Clock::time_point now);
  int size_;
  std::unordered_map<uint32_t, Round> rounds_;
};

}  // namespace quorum::coord
