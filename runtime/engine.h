// The per-rank background engine. One thread that (1) sends readiness for newly enqueued
// tensors to the coordinator, (2) executes the coordinator's plans strictly in sequence order
// on the data-plane backend, packing small tensors into a persistent fusion buffer, and
// (3) completes handles. It owns the control connection: when idle it sleeps in poll() on that
// socket and an eventfd that enqueues and stop() signal, so a plan or a new tensor wakes it
// directly. While a collective is in flight the backend calls back into it, so readiness keeps
// flowing and plans keep arriving (negotiation overlaps execution).
//
// Threads: submit() and stop() from any thread; everything else runs on the engine thread.
#pragma once

#include <array>
#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "coordinator/control_client.h"
#include "runtime/ready_gate.h"
#include "ops/backend.h"
#include "runtime/config.h"
#include "runtime/tensor_queue.h"
#include "runtime/timeline.h"
#include "runtime/topology.h"

namespace quorum {
namespace ops {
class DeviceBackend;  // Device (NCCL) data path: ops/nccl/device_backend.h
}  // namespace ops

class Engine {
 public:
  struct Options {
    Config config;
    int rank = 0;
    int size = 1;
    coord::ControlClient* client = nullptr;  // not owned
    ops::Backend* host_backend = nullptr;    // not owned
    const Topology* topology = nullptr;      // not owned
    // Where the current timeline (if any) is published; not owned, may be null.
    const TimelineSlot* timeline = nullptr;
    // Called after each allreduce with its algorithm, wire bytes and seconds, and the times of
    // its levels if it ran hierarchically (else null); rank 0 feeds the coordinator's cost model
    // with it. May be empty.
    std::function<void(ops::Algorithm, size_t, double, const ops::LevelTimes*)> on_allreduce_timed;
    // Device (NCCL) data path: the backend for CUDA tensors; not owned; null in a build
    // without NCCL.
    ops::DeviceBackend* device_backend = nullptr;
  };

  explicit Engine(Options options);
  ~Engine();

  void start();
  // Leaves the job: sends Goodbye, runs the plans still due, fails everything else with
  // "shut down", and joins the thread.
  void stop();

  // `wake` false: the caller goes straight on to help() (a blocking allreduce), so the engine
  // thread is not woken for it while a schedule runs.
  Status submit(PendingRequest&& request, bool wake = true) {
    return queue_.push(std::move(request), wake || !fast_live_.load(std::memory_order_acquire));
  }
  // Called by a thread about to block in wait() on `handle`: while the job runs a schedule
  // (the fast path) and the engine thread is not busy, this thread does the engine's work
  // itself (agreement, collective, completion), so a small allreduce costs no thread
  // hand-offs. Returns at once otherwise, or when nothing more is due here. Any thread.
  // `owe_wake`: the request was submitted without waking the engine thread, which is woken
  // here unless the request is done.
  void help(const detail::HandleState& handle, bool owe_wake = false);
  // True on a thread doing the engine's work (the engine thread, or one in help()), where a
  // blocking call would wait for itself: completion callbacks run there.
  static bool working_here();

  // flush(): folds every rank's late gradients (bounded mode) in one more reduction per tensor,
  // handed to `on_folded` on the engine thread; the returned state completes when every rank's
  // fold is done. Collective. Any thread; one flush at a time.
  using FlushCallback =
      std::function<void(const std::string& name, const Tensor& folded, int64_t gradients)>;
  std::shared_ptr<detail::HandleState> request_flush(FlushCallback on_folded);
  // True once any plan ran in bounded mode (then carries may exist).
  bool saw_bounded() const { return saw_bounded_.load(); }
  // Why the job can no longer run collectives (a peer failed), or "" if it can. After stop().
  const std::string& broken() const { return broken_; }

  // Counts a step; returns its number (from 1).
  uint64_t count_step() { return steps_.fetch_add(1, std::memory_order_relaxed) + 1; }
  Stats stats() const;
  // quorum::rounds_behind(): kept by the engine thread whenever a stored result comes or goes.
  uint64_t rounds_behind() const { return behind_.load(std::memory_order_acquire); }

 private:
  void run();
  void wake();
  // Engine thread: sends readiness for new requests and reads whatever plans have arrived.
  void pump();
  void send_readiness();
  // Reads the control socket when `read` (else only heartbeats and the silence check).
  void receive_plans(bool read = true);
  int64_t last_read_ns_ = 0;  // last read of the control socket
  void handle_batch(coord::PlanBatch& batch, int64_t received_ns);
  // The coordinator evicted `id` (QUORUM_CACHE_CAPACITY): its name is described in full again.
  void forget_id(uint32_t id);
  void execute(const coord::Plan& plan, int64_t received_ns);
  // Records a complete event on the timeline, if one is running.
  void trace(Lane lane, const char* cat, std::string name, int64_t start_ns, int64_t end_ns,
             std::vector<TimelineArg> args);
  // Bounded-round bookkeeping of one Sum/Average allreduce tensor (engine thread).
  struct TensorHistory {
    DataType dtype = DataType::kF32;
    size_t elements = 0;
    struct Stored {
      std::vector<unsigned char> result;  // in the tensor's dtype
      int64_t gradients = 0;              // the round's count
    };
    std::deque<Stored> stored;                      // results of rounds this rank missed
    std::vector<unsigned char> carry;               // late gradients, in the wire dtype
    int64_t carry_count = 0;
    // QUORUM_COMPRESSION_FEEDBACK: what compression took off this rank's last contribution, in
    // the uncompressed wire dtype (empty: nothing owed).
    std::vector<unsigned char> residual;
  };
  // One tensor's part of an allreduce plan on this rank.
  struct Slot {
    std::string name;
    PendingRequest* request = nullptr;  // null: this rank stands in for a round it missed
    bool missing = false;               // contributes zeros (count 0)
    TensorHistory* history = nullptr;   // Sum/Average tensors only
    size_t elements = 0;
  };
  Status run_allreduce(const coord::Plan& plan, std::vector<Slot>& slots);
  Status run_fold(const coord::Plan& plan);
  // A late request for a round this rank missed: answered at once from the stored result, its
  // gradient kept in the carry. False when there is no stored result for it.
  bool answer_late(PendingRequest& r);
  // The queue's new requests, less the catch-ups that have no missed round to take: those fail
  // at once, before the coordinator hears of them (engine_catch_up.cc).
  std::vector<PendingRequest> drain_requests();
  // Completes a catch-up request that found no stored result with kFailedPrecondition.
  void refuse_catch_up(PendingRequest& r);
  // Recomputes behind_ from the stored results (after one came or went).
  void note_behind();
  std::atomic<uint64_t> behind_{0};
  void track_extra_bytes(int64_t delta);
  // Adds one late gradient (in the tensor's dtype) to `h`'s carry.
  void add_to_carry(TensorHistory& h, const void* gradient);
  // Casts `elements` of `src` (dtype) into `dst` (wire dtype); when `wire` compresses, with
  // error feedback through `h`'s residual if QUORUM_COMPRESSION_FEEDBACK is on and `h` is set.
  void pack_part(TensorHistory* h, void* dst, DataType wire, const void* src, DataType dtype,
                 size_t elements);
  // The levels of a hierarchical allreduce on the timeline, inside its plan's span.
  void trace_levels(const coord::Plan& plan, const ops::LevelTimes& levels);
  // A plan's host allreduce, counted by algorithm (Stats) when it succeeds.
  Status plan_allreduce(void* buf, size_t count, DataType wire, ReduceOp op,
                        ops::Algorithm algorithm);
  // Hands a folded tensor to the flush callback (a warning when there is none), counting it.
  void hand_folded(const std::string& name, const Tensor& folded, int64_t gradients);
  // An allgather's layout: each rank's bytes, the output's shape and its total bytes.
  struct GatherLayout {
    std::vector<size_t> bytes_per_rank;
    std::vector<int64_t> shape;
    size_t total = 0;
  };
  static GatherLayout gather_layout(const Tensor& input, const std::vector<int64_t>& dim0_per_rank);
  Status run_broadcast(const coord::Plan& plan, PendingRequest& entry);
  Status run_allgather(const coord::Plan& plan, PendingRequest& entry);
  // Completes a pending request: frees its name, runs its callback (timed on the timeline when
  // `plan` is given), then publishes the result to wait()/poll().
  void complete(const std::string& name, const Status& status, const coord::Plan* plan = nullptr);
  void fail_everything(const std::string& reason);
  void timed(const coord::Plan& plan, size_t bytes, const std::vector<PendingRequest*>& entries,
             const std::function<Status()>& collective, Status* status);

  Options opt_;
  TensorQueue queue_;
  std::thread thread_;

  int wake_fd_ = -1;  // eventfd: enqueues and stop() make it readable
  std::atomic<bool> stop_requested_{false};
  // Held by whichever thread does the engine's work: the engine thread except while it sleeps
  // in poll(), or a thread in help(). Everything marked "engine thread only" is under it.
  std::mutex work_mu_;
  std::atomic<bool> fast_live_{false};  // a schedule is being run (help() may take over)

  // Engine thread only.
  struct Received {
    coord::Message message;
    int64_t at_ns;  // when this rank read it
  };
  std::deque<Received> inbox_;        // received, not yet handled
  Timeline* tl_ = nullptr;            // the timeline while a plan batch runs, else null
  std::string lost_reason_;           // why the control connection failed, once it has
  std::string broken_;                // a peer failed: the MPI job is unusable
  int64_t last_heard_ns_ = 0;         // last message from the coordinator
  int64_t last_sent_ns_ = 0;          // last message to it
  std::unordered_map<std::string, PendingRequest> pending_;   // sent, awaiting a plan
  ReadyGate gate_;  // drained, not yet announced: waiting for the rest of a fused group
  std::unordered_map<std::string, uint32_t> id_by_name_;
  std::vector<std::string> name_by_id_;
  std::unordered_map<std::string, coord::TensorRequest> described_;  // last full description sent
  uint64_t evictions_seen_ = 0;   // evicted ids forgotten (PlanBatch::evicted, summed)
  uint64_t evictions_acked_ = 0;  // ... as last told to the coordinator
  uint64_t next_seq_ = 0;
  std::unordered_map<std::string, TensorHistory> history_;
  // Tensors this rank is standing in for in the plan being executed: a request for one that
  // arrives meanwhile is for that very round, and waits here until its result is stored.
  std::unordered_set<std::string> standing_in_;
  std::vector<PendingRequest> deferred_;
  // Errors for tensors this rank had not submitted yet (a stall abort): its next request of
  // that name fails with it at once.
  std::unordered_map<std::string, Status> poisoned_;
  coord::SyncMode mode_ = coord::SyncMode::kSync;
  std::atomic<bool> saw_bounded_{false};
  std::atomic<bool> bounded_now_{false};
  // flush(): requested by any thread, sent and completed by the engine thread.
  std::mutex flush_mu_;
  FlushCallback flush_callback_;
  std::shared_ptr<detail::HandleState> flush_handle_;
  bool flush_sent_ = false;
  bool exited_ = false;  // the engine thread has finished (under flush_mu_)
  std::vector<unsigned char> fusion_;  // persistent fusion buffer, grown up to the threshold
  bool goodbye_acked_ = false;

  std::atomic<uint64_t> steps_{0}, plans_{0}, tensors_{0}, fused_{0}, errors_{0}, bytes_{0};
  std::atomic<int64_t> collective_ns_{0}, negotiation_ns_{0};
  std::atomic<uint64_t> late_answered_{0}, folded_{0}, bounded_plans_{0};
  std::array<std::atomic<uint64_t>, ops::kNumAlgorithms> by_algorithm_{};  // host allreduce plans
  std::atomic<int64_t> intra_ns_{0}, inter_ns_{0};  // levels of hierarchical allreduces
  std::atomic<int64_t> extra_bytes_{0}, extra_peak_{0};

  // Steady-state fast path (engine_fast.cc): a schedule from the coordinator, run in order; each
  // group of entries after an agreement among the ranks (a two-number MPI allreduce, min of
  // "entries ready from the cursor" and "staying"), without rank 0. Engine thread only.
  struct FastPath {
    uint64_t version = 0;
    bool reports = false;
    std::vector<coord::Plan> entries;                    // allreduce plans, one per entry
    // Per entry: its readiness vote rides in its own collective (one more element) instead of
    // an agreement of its own, and the elements it reduces. See voted_entry().
    std::vector<bool> voted;
    std::vector<size_t> elements;
    std::unordered_map<std::string, size_t> entry_of;    // member name -> its entry
    size_t cursor = 0;                                   // the next entry to run
    std::unordered_map<std::string, PendingRequest> held;  // enqueued, not yet run
    std::string leave;         // why this rank leaves at the next agreement ("" = it stays)
    bool exit_sent = false;    // FastExit sent to the coordinator
    int64_t out_of_order_since = 0;  // a later entry's member came first (0 = not now)
    uint64_t steps = 0;        // agreements that ran entry 0 (fast steps)
    uint64_t agreements = 0;   // agreements joined: the same count on every rank
    uint64_t reported = 0;     // fast steps whose samples went to the coordinator
    std::vector<coord::FastSample> samples;
  };
  void on_schedule(const coord::Schedule& schedule);
  void on_fast_abort(const coord::FastAbort& abort);
  // Requests drained while on a schedule: held for their entry; anything off the schedule sets
  // the reason to leave.
  void take_fast(std::vector<PendingRequest> fresh);
  void leave_fast(std::string reason);
  // Runs agreements and entries while some are due; returns when this rank must wait for its
  // framework (or has left the schedule).
  void run_fast();
  // Entries complete here, counted from the cursor (at most one full step).
  size_t fast_ready_entries(size_t* members) const;  // members: how many tensors they hold
  // Runs entry `index`; false when it was a voted one that some rank left (its requests are
  // held again, nothing completed).
  bool run_fast_entry(size_t index, int64_t agreed_ns);
  // A small host entry without compression carries the vote in its data (see engine_fast.cc).
  bool voted_entry(const coord::Plan& entry, size_t elements) const;
  // This rank leaves at voted entry `index`: it joins the entry's collective with zeros and a
  // leaving vote, so that every rank falls back after the same collective.
  void leave_voted_entry(size_t index);
  // Leaves the schedule: held requests go to the coordinator (or fail, when shutting down).
  void fall_back();
  void send_fast_report();
  // A fast entry's collective failed (fast_vote_error_): the job is broken, true.
  bool fast_entry_failed();
  // A fast step began (the entry at cursor 0 ran): counted, its arrival sample kept.
  void count_fast_step(int64_t entered_ns, int64_t agreed_ns);
  // While waiting in an agreement (progress hook): asks the coordinator to end the schedule
  // when the other ranks have not come for a while (so the stall inspector sees the round).
  void watch_fast_agreement();
  // Ready entries for the coordinator path: ids for names it knows, full descriptions otherwise.
  void announce(std::vector<PendingRequest> fresh);
  // QUORUM_CYCLE_TIME_MS in ns: the readiness gate's hold and the fast path's order grace.
  int64_t cycle_ns() const { return static_cast<int64_t>(opt_.config.cycle_time_ms * 1e6); }
  // How long the fast path waits on other ranks in an agreement, or on this rank's own
  // framework for an order nobody blocks on, before the round goes to the coordinator:
  // clamp(stall warning / 2, 0.05 s, 1 s).
  int64_t fast_patience_ns() const;
  // When an order change sends this rank off the schedule: a cycle time after it began if a
  // framework thread waits on something held (it may never give the due tensor first),
  // fast_patience_ns() otherwise (the framework is still producing; a gradient descheduled
  // past a bucket boundary comes soon). Only while out of order.
  int64_t order_deadline_ns() const;
  std::optional<FastPath> fast_;
  uint64_t schedule_seen_ = 0;      // the latest schedule received (Ready::schedule_seen)
  int64_t agreement_since_ns_ = 0;  // in an agreement since (0 = not)
  bool executing_fast_ = false;     // the plan being executed came from the schedule
  // Set around a voted entry's execution: this rank's vote (stays), and after the collective
  // whether every rank stayed; run_allreduce() appends and reads the vote element.
  std::optional<bool> fast_vote_;
  bool fast_vote_left_ = false;
  std::string fast_vote_error_;  // the voted collective failed (a peer is gone)
  std::atomic<uint64_t> fast_plans_{0}, fast_fallbacks_{0}, schedules_{0};

  // Device (NCCL) data path (engine_device.cc): plans whose device is CUDA. Engine thread only.
  struct DeviceHistory {  // a CUDA tensor's bounded-round state, in device memory
    int device = 0;
    DataType dtype = DataType::kF32;
    size_t elements = 0;
    struct Stored {
      void* result = nullptr;  // tensor dtype; null when the round failed on this rank
      int64_t gradients = 0;
      Status error;            // why there is no result
    };
    std::deque<Stored> stored;
    void* carry = nullptr;     // late gradients in the accumulate dtype
    int64_t carry_count = 0;
  };
  Status device_ready();  // hooks the backend; agrees whether every rank can use CUDA (collective)
  Status run_allreduce_device(const coord::Plan& plan, std::vector<Slot>& slots);
  Status run_broadcast_device(const coord::Plan& plan, PendingRequest& entry);
  Status run_allgather_device(const coord::Plan& plan, PendingRequest& entry);
  Status run_fold_device(const coord::Plan& plan);
  // Like answer_late() for a CUDA request (false when nothing is stored for it).
  bool answer_late_device(PendingRequest& r);
  Status add_to_device_carry(DeviceHistory& h, const void* gradient, void* ready_event);
  void drop_device_carry(DeviceHistory& h);
  // This rank's device path can no longer keep in step with the others (`why`, or else the
  // backend's out_of_step(); nothing when both are empty): breaks the job, as a failed peer
  // would, so no rank waits inside NCCL for it. See engine_device.cc.
  void leave_job_if_device_failed(const std::string& why = {});
  // The CUDA device of every device plan of this rank: the first one used (`wanted` then).
  int plan_device(int wanted);
  bool device_hooked_ = false;
  bool device_quiet_ = false;  // no readiness sent while a late request is answered
  // QUORUM_COMPRESSION as a dtype (kF32: none); rank 0's value, which init hands every rank.
  const DataType compression_ = compression_dtype(opt_.config);
  bool device_probed_ = false;  // every rank's CUDA was checked (device_error_ says how it went)
  Status device_error_;  // set when some rank cannot use CUDA: every CUDA plan fails with it
  int device_ordinal_ = -1;  // plan_device(), once chosen
  std::unordered_map<std::string, DeviceHistory> device_history_;
};

}  // namespace quorum
