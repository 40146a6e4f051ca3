// The per-rank background engine. One thread that (1) sends readiness for newly enqueued
// tensors to the coordinator, (2) executes the coordinator's plans strictly in sequence order
// on the data-plane backend, packing small tensors into a persistent fusion buffer, and
// (3) completes handles. It sleeps on a condition variable when idle; while a collective is in
// flight the backend calls back into it so readiness keeps flowing (negotiation overlaps
// execution).
//
// Threads: submit() from any thread; deliver()/connection_lost() from the io thread;
// start()/stop() from the thread that owns the runtime.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "coordinator/control_client.h"
#include "ops/backend.h"
#include "runtime/config.h"
#include "runtime/tensor_queue.h"
#include "runtime/topology.h"

namespace quorum {

class Engine {
 public:
  struct Options {
    Config config;
    int rank = 0;
    int size = 1;
    coord::ControlClient* client = nullptr;  // not owned
    ops::Backend* host_backend = nullptr;    // not owned
    const Topology* topology = nullptr;      // not owned
  };

  explicit Engine(Options options);
  ~Engine();

  void start();
  // Leaves the job: sends Goodbye, runs the plans still due, fails everything else with
  // "shut down", and joins the thread.
  void stop();

  Status submit(PendingRequest&& request) { return queue_.push(std::move(request)); }
  void deliver(coord::Message message);
  void connection_lost(const std::string& why);

  void count_step() { steps_.fetch_add(1, std::memory_order_relaxed); }
  Stats stats() const;

 private:
  void run();
  void wake();
  void send_readiness();
  void handle_batch(coord::PlanBatch& batch);
  void execute(const coord::Plan& plan);
  Status run_allreduce(const coord::Plan& plan, const std::vector<PendingRequest*>& entries);
  Status run_broadcast(const coord::Plan& plan, PendingRequest& entry);
  Status run_allgather(const coord::Plan& plan, PendingRequest& entry);
  void complete(const std::string& name, const Status& status);
  void fail_everything(const std::string& reason);
  void timed(size_t bytes, const std::function<Status()>& collective, Status* status);

  Options opt_;
  TensorQueue queue_;
  std::thread thread_;

  // Shared with other threads, under mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  bool wake_pending_ = false;
  bool stop_requested_ = false;
  std::string lost_reason_;
  std::deque<coord::Message> inbox_;

  // Engine thread only.
  std::unordered_map<std::string, PendingRequest> pending_;   // sent, awaiting a plan
  std::unordered_map<std::string, uint32_t> id_by_name_;
  std::vector<std::string> name_by_id_;
  std::unordered_map<std::string, coord::TensorRequest> described_;  // last full description sent
  uint64_t next_seq_ = 0;
  std::vector<unsigned char> fusion_;  // persistent fusion buffer, grown up to the threshold
  bool goodbye_acked_ = false;

  std::atomic<uint64_t> steps_{0}, plans_{0}, tensors_{0}, fused_{0}, errors_{0}, bytes_{0};
  std::atomic<int64_t> collective_ns_{0}, negotiation_ns_{0};
};

}  // namespace quorum
