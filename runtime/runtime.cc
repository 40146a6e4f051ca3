#include "runtime/runtime.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/bootstrap.h"
#include "runtime/logging.h"

namespace quorum {
namespace {

using namespace std::chrono;

template <typename Seconds>
steady_clock::duration to_duration(Seconds s) {
  return duration_cast<steady_clock::duration>(duration<double>(s));
}

// Agrees across ranks on whether every rank got this far, without a blocking spin. A rank that
// passed its own check learns which ranks failed theirs.
Status all_ok(MPI_Comm comm, const Status& mine) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  int ok = mine.is_ok() ? 1 : 0;
  std::vector<int> all(static_cast<size_t>(size), 0);
  MPI_Request req;
  MPI_Iallgather(&ok, 1, MPI_INT, all.data(), 1, MPI_INT, comm, &req);
  QUORUM_RETURN_IF_ERROR(ops::wait_request(req, {}));
  if (!mine.is_ok()) return mine;
  std::string failed;
  for (int r = 0; r < size; ++r) {
    if (!all[static_cast<size_t>(r)]) failed += (failed.empty() ? "" : ",") + std::to_string(r);
  }
  if (failed.empty()) return Status::ok();
  const bool one = failed.find(',') == std::string::npos;
  return Status(StatusCode::kAborted, "init failed on rank" + std::string(one ? " " : "s ") +
                                          failed + " (see " + (one ? "its" : "their") + " log)");
}

}  // namespace

const char* stage_name(InitStage stage) {
  switch (stage) {
    case InitStage::kMpi: return "mpi";
    case InitStage::kCommunicator: return "communicator";
    case InitStage::kConfig: return "config";
    case InitStage::kCoordinator: return "coordinator";
    case InitStage::kConnected: return "connected";
    case InitStage::kBackends: return "backends";
    case InitStage::kEngine: return "engine";
  }
  return "?";
}

Status Runtime::create(std::unique_ptr<Runtime>* out, int* mpi_rank,
                       std::optional<InitStage> fail_after) {
  // Each step either succeeds on every rank or fails on every rank; an early return leaves `rt`
  // to its destructor, which tears down exactly what exists.
  std::unique_ptr<Runtime> rt(new Runtime());
  auto after = [&](InitStage stage) {
    if (stage != fail_after) return Status::ok();
    return Status(StatusCode::kAborted,
                  std::string("init stopped after stage '") + stage_name(stage) + "' (test)");
  };
  QUORUM_RETURN_IF_ERROR(rt->start_mpi(mpi_rank));
  QUORUM_RETURN_IF_ERROR(after(InitStage::kMpi));
  MPI_Comm_dup(MPI_COMM_WORLD, &rt->comm_);
  MPI_Comm_set_errhandler(rt->comm_, MPI_ERRORS_RETURN);
  MPI_Comm_dup(MPI_COMM_WORLD, &rt->step_comm_);
  QUORUM_RETURN_IF_ERROR(after(InitStage::kCommunicator));
  QUORUM_RETURN_IF_ERROR(all_ok(rt->comm_, rt->check_config()));
  QUORUM_RETURN_IF_ERROR(after(InitStage::kConfig));
  QUORUM_RETURN_IF_ERROR(rt->start_coordinator());
  QUORUM_RETURN_IF_ERROR(after(InitStage::kCoordinator));
  QUORUM_RETURN_IF_ERROR(all_ok(rt->comm_, rt->connect()));
  QUORUM_RETURN_IF_ERROR(after(InitStage::kConnected));
  QUORUM_RETURN_IF_ERROR(all_ok(rt->comm_, rt->start_backends()));
  QUORUM_RETURN_IF_ERROR(after(InitStage::kBackends));
  rt->start_engine();
  QUORUM_RETURN_IF_ERROR(after(InitStage::kEngine));
  *out = std::move(rt);
  return Status::ok();
}

Status Runtime::start_mpi(int* mpi_rank) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (finalized) {
    return Status(StatusCode::kFailedPrecondition,
                  "MPI has already been finalised in this process; quorum cannot start again");
  }
  int provided = 0;
  if (!initialized) {
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
      return Status(StatusCode::kInternal, "MPI_Init_thread failed");
    }
    own_mpi_ = true;
  } else {
    MPI_Query_thread(&provided);
  }
  if (mpi_rank) MPI_Comm_rank(MPI_COMM_WORLD, mpi_rank);
  if (provided < MPI_THREAD_MULTIPLE) {
    return Status(StatusCode::kFailedPrecondition,
                  own_mpi_ ? "this MPI library does not provide MPI_THREAD_MULTIPLE"
                           : "the application initialised MPI without MPI_THREAD_MULTIPLE; "
                             "quorum's engine calls MPI from its own thread (use "
                             "MPI_Init_thread with MPI_THREAD_MULTIPLE)");
  }
  ops::reset_abandoned();
  return Status::ok();
}

Status Runtime::check_config() {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  QUORUM_RETURN_IF_ERROR(ops::Hierarchy::from_shared_memory(comm_, &hierarchy_));
  local_rank_ = hierarchy_->local_rank();
  local_size_ = hierarchy_->local_size();
  host_count_ = hierarchy_->hosts();
  host_index_ = hierarchy_->host_index();
  set_log_rank(rank_);
  QUORUM_RETURN_IF_ERROR(load_config(process_env(), &config_));
  configure_logging(config_.log_level, config_.log_subsystems);
  if (config_.quorum > size_) {
    return Status(StatusCode::kInvalidArgument,
                  "QUORUM_QUORUM=" + std::to_string(config_.quorum) + " exceeds the job's " +
                      std::to_string(size_) + " ranks (accepted: 0 = majority, or 1 .. " +
                      std::to_string(size_) + ")");
  }
  return Status::ok();
}

Status Runtime::start_coordinator() {
  Status topo = Topology::load(&topology_);
  if (!topo.is_ok()) QLOG(kWarn, kInit) << topo.message() << "; continuing without pinning";

  // Rank 0 opens the coordinator before anyone dials it.
  Rendezvous mine;
  Status root_status;
  if (rank_ == 0) {
    coord::ServiceOptions so;
    so.size = size_;
    so.fusion_threshold = static_cast<size_t>(config_.fusion_threshold);
    so.fusion_max_tensor = static_cast<size_t>(config_.fusion_max_tensor);
    so.cycle_time = to_duration(config_.cycle_time_ms / 1000.0);
    so.staleness = static_cast<int>(config_.staleness);
    so.fast_path = config_.fast_path != 0;
    so.cache_capacity = static_cast<size_t>(config_.cache_capacity);
    so.policy.automatic = config_.sync_mode == "auto";
    so.policy.initial =
        config_.sync_mode == "bounded" ? coord::SyncMode::kBounded : coord::SyncMode::kSync;
    so.policy.size = size_;
    so.policy.quorum = config_.quorum == 0 ? size_ / 2 + 1 : static_cast<int>(config_.quorum);
    so.policy.enter = config_.async_enter;
    so.policy.exit = config_.async_exit;
    so.policy.window = static_cast<int>(config_.policy_window);
    so.log = [](const std::string& m) { QLOG(kWarn, kCoord) << m; };
    so.stall_warning = to_duration(config_.stall_warning_sec);
    so.stall_abort = to_duration(config_.stall_abort_sec);
    so.failure_timeout = to_duration(config_.failure_timeout_sec);
    if (config_.algorithm == "native") so.algorithm = ops::Algorithm::kNative;
    if (config_.algorithm == "ring") so.algorithm = ops::Algorithm::kRing;
    if (config_.algorithm == "tree") so.algorithm = ops::Algorithm::kTree;
    if (config_.algorithm == "hierarchical" || config_.hierarchical == "on") {
      so.algorithm = ops::Algorithm::kHierarchical;
    }
    so.model.shape = {hierarchy_->hosts(), hierarchy_->max_local_size()};
    // Worth choosing only where both levels exist: with one host, or one rank per host, it is
    // a flat ring.
    so.model.allowed[static_cast<size_t>(ops::Algorithm::kHierarchical)] =
        config_.hierarchical != "off" && hierarchy_->hosts() > 1 &&
        hierarchy_->max_local_size() > 1;
    mine.token = make_session_token();
    mine.job_settings = job_settings_text(config_);
    server_ = std::make_unique<coord::CoordinatorServer>(
        io_, so, mine.token, [](const std::string& m) { QLOG(kWarn, kCoord) << m; });
    std::string bind_address;
    root_status = choose_control_address(config_.control_addr, local_size_ == size_,
                                         &bind_address, &mine.host);
    if (root_status.is_ok()) {
      root_status = server_->listen(bind_address, static_cast<uint16_t>(config_.control_port));
    }
    mine.port = server_->port();
  }
  QUORUM_RETURN_IF_ERROR(exchange_rendezvous(comm_, mine, root_status, &rendezvous_));
  QUORUM_RETURN_IF_ERROR(adopt_root_settings());
  if (server_) {  // the coordinator's own thread, so it answers while rank 0 computes
    work_.emplace(io_.get_executor());
    io_thread_ = std::thread([this] { io_.run(); });
  }
  return Status::ok();
}

Status Runtime::adopt_root_settings() {
  std::vector<std::string> differing;
  QUORUM_RETURN_IF_ERROR(apply_job_settings(rendezvous_.job_settings, &config_, &differing));
  for (const std::string& knob : differing) {
    QLOG(kWarn, kConfig) << knob << " differs on this rank; rank 0's value decides for the job";
  }
  return Status::ok();
}

Status Runtime::connect() {
  const Rendezvous& rv = rendezvous_;
  client_ = std::make_unique<coord::ControlClient>();
  coord::Welcome welcome;
  int64_t midpoint_ns = 0;
  QUORUM_RETURN_IF_ERROR(
      client_->connect(rv.host, rv.port, {rank_, size_, rv.token},
                       to_duration(config_.connect_timeout_sec), &welcome, &midpoint_ns));
  connected_ = true;
  // On rank 0's host both clocks are the same CLOCK_MONOTONIC; elsewhere estimate the offset
  // from the handshake's round trip (accurate to about half its asymmetry).
  clock_offset_us_ = rv.root_host == this_host()
                         ? 0.0
                         : static_cast<double>(welcome.coordinator_clock_ns - midpoint_ns) / 1e3;
  run_id_ = run_id_from_token(rv.token);
  QLOG(kInfo, kInit) << "connected to the coordinator at " << rv.host << ":" << rv.port << " ("
                     << size_ << " ranks, " << local_size_ << " on this host"
                     << (topology_ ? ", " + topology_->summary() : std::string()) << ")";
  return Status::ok();
}

Status Runtime::start_backends() {
  backend_ = std::make_unique<ops::MpiBackend>(comm_, hierarchy_.get());
  // Device (NCCL) data path: cheap to create (CUDA starts at the first CUDA collective); a build
  // without NCCL has none, and CUDA tensors are refused at enqueue.
  if (ops::device_backend_built()) {
    QUORUM_RETURN_IF_ERROR(ops::create_device_backend(comm_, local_rank_, config_.nccl_algo,
                                                     &device_backend_));
  }
  // Opened before the engine starts, so a path that cannot be written fails init on every rank.
  if (!config_.timeline.empty()) QUORUM_RETURN_IF_ERROR(start_timeline(config_.timeline));
  return Status::ok();
}

void Runtime::start_engine() {
  Engine::Options eo;
  eo.config = config_;
  eo.rank = rank_;
  eo.size = size_;
  eo.client = client_.get();
  eo.host_backend = backend_.get();
  eo.device_backend = device_backend_.get();
  eo.topology = topology_.get();
  eo.timeline = &timeline_;
  if (server_) {
    // Batched: a post per collective would wake the coordinator's thread next to every small
    // allreduce (on a shared core, right in the next one's path). The cost model needs the
    // samples, not their promptness.
    struct Sample {
      ops::Algorithm algorithm;
      size_t bytes;
      double seconds;
      double intra_seconds;  // hierarchical: its levels
      double inter_seconds;
    };
    auto batch = std::make_shared<std::vector<Sample>>();
    auto since = std::make_shared<int64_t>(0);
    eo.on_allreduce_timed = [this, batch, since](ops::Algorithm a, size_t bytes, double seconds,
                                                 const ops::LevelTimes* levels) {
      constexpr size_t kBatch = 32;
      constexpr int64_t kMaxDelayNs = 20'000'000;
      batch->push_back({a, bytes, seconds, levels ? levels->intra_seconds() : 0,
                        levels ? levels->inter_seconds() : 0});
      const int64_t now = Timeline::now_ns();
      if (*since == 0) *since = now;
      if (batch->size() < kBatch && now - *since < kMaxDelayNs) return;
      coord::asio::post(io_, [s = server_.get(), samples = std::move(*batch)] {
        for (const Sample& x : samples) {
          s->observe(x.algorithm, x.bytes, x.seconds, x.intra_seconds, x.inter_seconds);
        }
      });
      batch->clear();
      *since = 0;
    };
  }
  engine_ = std::make_unique<Engine>(eo);
  engine_->start();
  step_backend_ = std::make_unique<ops::MpiBackend>(step_comm_);
  StepControl::Hooks hooks;
  hooks.collective_seconds = [this] { return engine_->stats().collective_seconds; };
  if (server_) {
    hooks.waiting_fraction = [this] { return server_->waiting_fraction(); };
    hooks.bounded_rounds = [this] { return server_->bounded(); };
  }
  hooks.broadcast = [this](void* buf, size_t bytes) { return step_backend_->broadcast(buf, bytes, 0); };
  hooks.timeline = [this] { return timeline(); };
  step_control_ = std::make_unique<StepControl>(config_, rank_, std::move(hooks));
}

Stats Runtime::stats() const {
  Stats s = engine_->stats();
  s.local_steps = step_control_->local_steps();
  s.averagings = step_control_->averagings();
  return s;
}

void Runtime::discard() {
  shut_down_ = true;
  // A job that never started: every rank leaves politely, so rank 0 does not report lost
  // connections, and the coordinator stops.
  if (connected_) {
    Status s = client_->send(coord::Goodbye{});
    if (!s.is_ok()) QLOG(kDebug, kInit) << "init teardown: " << s.message();
  }
  stop_timeline();
  stop_io();
  if (client_) client_->close();
  device_backend_.reset();
  backend_.reset();
  hierarchy_.reset();
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  if (step_comm_ != MPI_COMM_NULL) MPI_Comm_free(&step_comm_);
  if (own_mpi_) MPI_Finalize();
}

Status Runtime::start_timeline(const std::string& path) {
  std::lock_guard lk(timeline_mu_);
  Timeline::Meta meta{run_id_, rank_, size_, clock_offset_us_};
  std::unique_ptr<Timeline> t;
  QUORUM_RETURN_IF_ERROR(Timeline::open(path, meta,
                                        static_cast<size_t>(config_.timeline_max_mb) << 20,
                                        size_t{1} << 16, &t));
  std::shared_ptr<Timeline> old = timeline_.exchange(std::shared_ptr<Timeline>(std::move(t)));
  if (old) old->stop();
  return Status::ok();
}

void Runtime::stop_timeline() {
  std::lock_guard lk(timeline_mu_);
  std::shared_ptr<Timeline> old = timeline_.exchange(nullptr);
  if (!old) return;
  old->stop();
  if (old->dropped() > 0) {
    QLOG(kWarn, kInit) << "timeline " << old->file() << ": " << old->dropped()
                       << " events dropped (queue full or size cap)";
  }
}

Status Runtime::enqueue(PendingRequest&& request, bool wake) {
  QUORUM_RETURN_IF_ERROR(validate_request(request, size_, &request.elements));
  return engine_->submit(std::move(request), wake);
}

void Runtime::stop_io() {
  if (server_) {
    coord::asio::post(io_, [s = server_.get()] { s->stop(); });
  }
  work_.reset();
  if (io_thread_.joinable()) {
    // The io thread ends by itself once the server's last writes and closes are done; a peer
    // that never lets a write finish is cut off after a grace period.
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::thread watchdog([&] {
      std::unique_lock lk(mu);
      if (!cv.wait_for(lk, seconds(5), [&] { return done; })) io_.stop();
    });
    io_thread_.join();
    {
      std::lock_guard lk(mu);
      done = true;
    }
    cv.notify_one();
    watchdog.join();
  }
}

Status Runtime::shutdown() {
  if (shut_down_) return Status::ok();
  if (!engine_) {
    discard();
    return Status::ok();
  }
  shut_down_ = true;
  if (engine_->saw_bounded()) {
    // Late gradients still in carries are folded once more so none is silently dropped; with
    // no callback here they can only be counted (call quorum::flush(callback) to apply them).
    Status s = engine_->request_flush({})->wait();
    if (!s.is_ok()) QLOG(kWarn, kInit) << "shutdown: " << s.message();
  }
  engine_->stop();
  const std::string broken = engine_->broken();
  if (server_ && broken.empty()) {
    // The coordinator must outlive every rank's goodbye.
    auto deadline = steady_clock::now() + to_duration(config_.shutdown_timeout_sec);
    while (!server_->finished() && steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    if (!server_->finished()) {
      QLOG(kWarn, kCoord) << "shutdown: some ranks did not leave within "
                          << config_.shutdown_timeout_sec << " s; stopping the coordinator";
    }
  }
  stop_timeline();
  stop_io();
  Stats s = engine_->stats();
  QLOG(kInfo, kInit) << "shut down after " << s.plans << " plans, " << s.tensors << " tensors";
  // The device backend first: its teardown asks the (stopped) engine whether the job broke.
  device_backend_.reset();
  engine_.reset();
  backend_.reset();
  if (!broken.empty()) {
    // MPI cannot finalise with a failed peer (it would wait for it forever): leave MPI as it
    // is and let the process exit; mpiexec then ends the job.
    (void)hierarchy_.release();  // its communicators stay with the broken job, like comm_
    QLOG(kError, kInit) << "shutdown: the job is broken (" << broken
                        << "); MPI was not finalised, exit the process";
    return Status(StatusCode::kAborted,
                  "shutdown: the job is broken (" + broken + "); MPI was not finalised");
  }
  step_backend_.reset();
  hierarchy_.reset();
  MPI_Comm_free(&comm_);
  MPI_Comm_free(&step_comm_);
  if (own_mpi_) {
    // Said first, so that a job whose MPI hangs in finalising can be told apart from one that
    // never got here (MPICH 4.0.2 + UCX 1.13 over TCP can: README, emulated hosts).
    QLOG(kInfo, kInit) << "finalizing MPI";
    MPI_Finalize();
  }
  return Status::ok();
}

Runtime::~Runtime() {
  if (shut_down_) return;
  if (engine_) {
    shutdown();
  } else {
    discard();
  }
}

}  // namespace quorum
