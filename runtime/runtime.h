// One initialised quorum instance: MPI ownership, the duplicated communicator, the topology,
// the io thread with the control connection (and on rank 0 the coordinator server), the MPI
// backend and the engine. Created by init(), destroyed after shutdown().
#pragma once

#include <mpi.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "coordinator/asio.h"
#include "coordinator/control_client.h"
#include "coordinator/coordinator_server.h"
#include "ops/mpi_backend.h"
#include "ops/nccl/device_backend.h"
#include "runtime/bootstrap.h"
#include "runtime/config.h"
#include "runtime/engine.h"
#include "runtime/step_control.h"
#include "runtime/timeline.h"
#include "runtime/topology.h"

namespace quorum {

// The steps of Runtime::create, in order; each failure point lies after one of them.
enum class InitStage {
  kMpi,           // MPI initialised (or found initialised) with MPI_THREAD_MULTIPLE
  kCommunicator,  // MPI_COMM_WORLD duplicated
  kConfig,        // knobs read and checked against the job, agreed by every rank
  kCoordinator,   // rank 0's coordinator listening, rendezvous published
  kConnected,     // every rank connected to the coordinator
  kBackends,      // MPI and device backends created, timeline open
  kEngine,        // engine thread running: the runtime is complete
};
const char* stage_name(InitStage stage);

class Runtime {
 public:
  // Runs the whole init sequence; collective over MPI_COMM_WORLD. Every failure after MPI is up
  // is agreed by all ranks, so they all return an error together (a rank whose own check failed
  // returns its own message; the others say another rank failed) and none waits for the rest.
  // On error nothing is left running: MPI stays initialised only if the application
  // initialised it. `*mpi_rank` (if given) is set to this process's rank in MPI_COMM_WORLD as
  // soon as MPI is up, so a caller can label a failure. `fail_after` is for tests: create stops
  // with kAborted right after that stage, tearing down what it built so far.
  static Status create(std::unique_ptr<Runtime>* out, int* mpi_rank = nullptr,
                       std::optional<InitStage> fail_after = std::nullopt);
  // Shuts a complete runtime down, or tears down whatever part of one create() built.
  ~Runtime();

  // Leaves the job and tears everything down; safe to call once.
  Status shutdown();

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  // The hosts the job spans (MPI_COMM_TYPE_SHARED of the data communicator) and this rank's.
  // Kept as values, like the local rank: the API may ask while shutdown() frees the hierarchy.
  int host_count() const { return host_count_; }
  int host_index() const { return host_index_; }

  // Validates and queues a request; on error returns it (the caller completes the handle).
  // `wake` false: the caller helps the engine right away (Engine::submit).
  Status enqueue(PendingRequest&& request, bool wake = true);
  Engine& engine() { return *engine_; }
  StepControl& step_control() { return *step_control_; }
  // The engine's counters and the step schedule's.
  Stats stats() const;

  // Starts writing a timeline to `path` (per-rank file names), replacing a running one.
  Status start_timeline(const std::string& path);
  void stop_timeline();
  // The running timeline, or null; thread-safe.
  std::shared_ptr<Timeline> timeline() const { return timeline_.load(); }

 private:
  Runtime() = default;
  Status start_mpi(int* mpi_rank);
  Status check_config();
  Status start_coordinator();
  // Takes rank 0's data-path settings from the rendezvous (warning where this rank's differ).
  Status adopt_root_settings();
  Status connect();
  Status start_backends();
  void start_engine();
  // Undoes a partial create() (no engine yet): threads joined, communicator freed, MPI
  // finalised if ours. Every rank reaches it together (see create).
  void discard();
  void stop_io();

  Config config_;
  bool own_mpi_ = false;
  bool connected_ = false;  // this rank's Hello was welcomed
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1, host_count_ = 1, host_index_ = 0;
  std::unique_ptr<Topology> topology_;
  std::unique_ptr<ops::Hierarchy> hierarchy_;  // freed before comm_
  coord::asio::io_context io_;
  std::optional<coord::asio::executor_work_guard<coord::asio::io_context::executor_type>> work_;
  std::thread io_thread_;
  std::unique_ptr<coord::CoordinatorServer> server_;
  std::unique_ptr<coord::ControlClient> client_;
  std::unique_ptr<ops::MpiBackend> backend_;
  std::unique_ptr<ops::DeviceBackend> device_backend_;  // CUDA tensors; null without NCCL
  std::unique_ptr<Engine> engine_;
  // begin_step()'s segment decisions travel on a communicator of their own (the training thread
  // is its only user, so every rank issues them in the same order without the engine).
  MPI_Comm step_comm_ = MPI_COMM_NULL;
  std::unique_ptr<ops::MpiBackend> step_backend_;
  std::unique_ptr<StepControl> step_control_;
  Rendezvous rendezvous_;       // where the coordinator listens, and the session token
  double clock_offset_us_ = 0;  // rank 0's steady clock minus ours, measured at connect
  std::string run_id_;          // the same on every rank of this run; names its timelines
  TimelineSlot timeline_;
  std::mutex timeline_mu_;      // serialises start/stop
  bool shut_down_ = false;
};

}  // namespace quorum
