// quorum-bench: quorum's public API next to raw MPI, measured in the same run, every result
// verified element by element (the (seed, rank, index) rule of tests/common/test_data.h).
//
//   quorum-bench sweep [--op allreduce|broadcast|allgather|all] [--min 4] [--max 256M] ...
//                      [--crossovers N]   then every fixed algorithm, and where each wins
//   quorum-bench allreduce --sizes 4K,64M [--reps 20]       the sweep over a list of sizes
//   quorum-bench train --model resnet50|bert-base|tiny-many [--steps N] [--compute-ms X] ...
//   quorum-bench algos [--min 4K] [--max 4M] [--rounds 5]   auto against each fixed algorithm
//   quorum-bench converge [--model mlp|wide] [--straggler none|transient|persistent] ...
//                                     training to a held-out loss under this run's QUORUM_* mode
//   quorum-bench coordinator --ranks N [--tensors 161] [--steps 20] [--seed X] [--json [FILE]]
//                                     rank 0's coordinator under N simulated ranks (no MPI)
//
// Run under mpiexec (coordinator: a plain process, dispatched before MPI starts); rank 0
// prints. --json FILE also writes the results as JSON (rank 0).
// Exit status: 0 verified, 1 a wrong element, a failed quorum call or an unwritable --json,
// 2 bad usage.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <climits>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "quorum/quorum.h"
#include "tools/bench/algos.h"
#include "tools/bench/converge.h"
#include "tools/bench/coord_bench.h"
#include "tools/bench/models.h"
#include "tools/bench/mpi_types.h"
#include "tools/bench/report.h"
#include "tools/bench/sweep.h"
#include "tools/bench/table.h"
#include "tools/bench/train.h"
#include "tools/bench/units.h"

namespace quorum::bench {
namespace {

constexpr int kExitWrong = 1;
constexpr int kExitUsage = 2;

const CLI::Validator kSize(
    [](std::string& text) {
      size_t bytes = 0;
      return parse_size(text, &bytes) ? std::string() : "not a size (e.g. 4, 64K, 256M, 1G)";
    },
    "SIZE");

const CLI::Validator kDtype(
    [](std::string& text) {
      DataType t;
      return parse_dtype(text, &t) ? std::string() : "dtype must be f32|f64|f16|bf16|i32|i64|u8";
    },
    "DTYPE");

size_t size_of(const std::string& text) {
  size_t bytes = 0;
  parse_size(text, &bytes);  // validated by kSize
  return bytes;
}

int usage_error(const std::string& what) {
  std::fprintf(stderr, "quorum-bench: %s\n", what.c_str());
  return kExitUsage;
}

// --min, --max and --factor: a geometric range of sizes (sweep and algos).
struct SizeRange {
  std::string min, max;
  size_t factor = 4;
};

void add_size_range_options(CLI::App* c, SizeRange* r) {
  c->add_option("--min", r->min, "smallest size in bytes (K/M/G)")
      ->check(kSize)
      ->capture_default_str();
  c->add_option("--max", r->max, "largest size in bytes (K/M/G)")
      ->check(kSize)
      ->capture_default_str();
  c->add_option("--factor", r->factor, "size multiplier")->capture_default_str();
}

// The sizes of a validated range; "" or the problem.
std::string range_sizes(const SizeRange& r, std::vector<size_t>* sizes) {
  const size_t lo = size_of(r.min), hi = size_of(r.max);
  if (lo == 0 || lo > hi) return "--min must be at least 1 and at most --max";
  if (r.factor < 2) return "--factor must be at least 2";
  *sizes = geometric_sizes(lo, hi, r.factor);
  return {};
}

// What the sweep and allreduce subcommands read from the command line.
struct SweepArgs {
  std::string op = "allreduce";
  SizeRange range{"4", "256M"};
  std::vector<std::string> sizes{"4K", "64K", "1M", "16M", "64M"};
  std::string dtype = "f32";
  int reps = 0, warmup = 2;
  double target_ms = 200;
  uint64_t seed = 1;
  int crossover_rounds = 0;  // sweep --crossovers N: then the fixed algorithms, as algos does
};

struct AlgosArgs {
  SizeRange range{"4K", "4M"};
  std::string dtype = "f32";
  AlgosOptions options;
};

struct TrainArgs {
  std::string model = "resnet50";
  int steps = 20, warmup = 2;
  double compute_ms = 100, jitter = 0, progress_s = 3;
  std::string straggler;
  uint64_t seed = 1;
};

void add_common_sweep_options(CLI::App* c, SweepArgs* a) {
  c->add_option("--dtype", a->dtype, "element type")->check(kDtype)->capture_default_str();
  c->add_option("--reps", a->reps, "timed repetitions per size (default: adaptive)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--warmup", a->warmup, "untimed repetitions per size")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  c->add_option("--target-ms", a->target_ms, "adaptive repetitions: time per size to aim for")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->add_option("--seed", a->seed, "data seed")->capture_default_str();
}

// Turns validated arguments into options; "" or the problem.
std::string sweep_options(const SweepArgs& a, bool list, SweepOptions* o) {
  parse_dtype(a.dtype, &o->dtype);
  if (a.op == "all") {
    o->collectives = {Collective::kAllreduce, Collective::kBroadcast, Collective::kAllgather};
  } else {
    o->collectives = {a.op == "broadcast"   ? Collective::kBroadcast
                      : a.op == "allgather" ? Collective::kAllgather
                                            : Collective::kAllreduce};
  }
  if (list) {
    for (const std::string& s : a.sizes) o->sizes.push_back(size_of(s));
  } else if (std::string e = range_sizes(a.range, &o->sizes); !e.empty()) {
    return e;
  }
  for (size_t bytes : o->sizes) {
    if (bytes / dtype_size(o->dtype) > static_cast<size_t>(INT_MAX)) {
      return "size " + format_size(bytes) + " is more elements than one MPI call takes";
    }
  }
  o->reps = a.reps;
  o->warmup = a.warmup;
  o->target_seconds = a.target_ms / 1e3;
  o->seed = a.seed;
  return {};
}

std::vector<std::pair<std::string, std::string>> sweep_settings(const SweepArgs& a, bool list,
                                                                const SweepOptions& o) {
  std::string sizes;
  if (list) {
    for (size_t s : o.sizes) sizes += (sizes.empty() ? "" : ",") + format_size(s);
  } else {
    sizes = format_size(o.sizes.front()) + " .. " + format_size(o.sizes.back()) + ", x" +
            std::to_string(a.range.factor) + " (" + std::to_string(o.sizes.size()) + " sizes)";
  }
  const std::string reps = o.reps > 0 ? std::to_string(o.reps)
                                      : "adaptive (~" + fixed(a.target_ms, 0) + " ms per size, " +
                                            std::to_string(o.min_reps) + ".." +
                                            std::to_string(o.max_reps) + ")";
  return {{"op", list ? "allreduce" : a.op},
          {"sizes", sizes},
          {"dtype", a.dtype},
          {"allreduce op", "sum"},
          {"repetitions", reps + ", after " + std::to_string(o.warmup) + " warm-up"},
          {"timing",
           "enqueue to completion (quorum) and the raw MPI call, each after a barrier; "
           "slowest rank's median"},
          {"verification", "every element of every repetition, both implementations"},
          {"seed", std::to_string(o.seed)}};
}

std::vector<std::pair<std::string, std::string>> train_settings(const TrainArgs& a, const Model& m,
                                                                const TrainOptions& o) {
  const double params = static_cast<double>(m.total_numel());
  const std::string straggler = o.compute.straggler.rank < 0
                                    ? "none"
                                    : "rank " + std::to_string(o.compute.straggler.rank) + " " +
                                          fixed(o.compute.straggler.slowdown, 2) +
                                          "x slower with probability " +
                                          fixed(o.compute.straggler.probability, 2) + " per step";
  return {
      {"model", m.name + ": " + m.description + "; " + std::to_string(m.params.size()) +
                    " tensors, " + fixed(params / 1e6, 2) + " M parameters, " +
                    format_bytes(params * 4) + " of f32 gradients per step"},
      {"steps", std::to_string(o.steps) + " timed after " + std::to_string(o.warmup) +
                    " warm-up, variants interleaved step by step"},
      {"compute", fixed(a.compute_ms, 1) + " ms per step of busy floating-point work, jitter +-" +
                      fixed(a.jitter * 100, 0) +
                      "%, spread over the gradients by backward cost, last layer first"},
      {"straggler", straggler},
      {"gradients", "f32, Average, test_data rule; quorum enqueues each as it is produced"},
      {"seed", std::to_string(o.compute.seed)}};
}

// MPI and quorum for the life of the run: the application owns MPI (raw baselines share it).
class Session {
 public:
  bool start(int* argc, char*** argv) {
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    if (provided < MPI_THREAD_MULTIPLE) {
      std::fprintf(stderr, "quorum-bench: MPI gives thread level %d, quorum needs MULTIPLE\n",
                   provided);
      return false;
    }
    if (Status s = quorum::init(); !s.is_ok()) {
      std::fprintf(stderr, "quorum-bench: quorum::init: %s\n", s.message().c_str());
      return false;
    }
    return true;
  }
  ~Session() {
    if (quorum::is_initialized()) quorum::shutdown();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
};

int finish(const std::string& json_path, const nlohmann::json& j, long long wrong) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);  // quorum may be shut down (algos)
  if (rank != 0) return wrong ? kExitWrong : 0;
  std::printf("# %s\n", wrong ? "WRONG RESULTS" : "all results verified");
  std::fflush(stdout);
  if (!json_path.empty()) {
    if (Status s = write_json(json_path, j); !s.is_ok()) {
      std::fprintf(stderr, "quorum-bench: %s\n", s.message().c_str());
      return kExitWrong;
    }
  }
  return wrong ? kExitWrong : 0;
}

int run(int argc, char** argv) {
  CLI::App app{
      "quorum-bench: quorum next to raw MPI in the same run, every element verified "
      "(run under mpiexec)"};
  app.require_subcommand(1);
  std::string json_path;

  SweepArgs sa;
  CLI::App* sweep = app.add_subcommand("sweep", "nccl-tests-style size sweep, quorum vs raw MPI");
  sweep->add_option("--op", sa.op, "collective")
      ->check(CLI::IsMember({"allreduce", "broadcast", "allgather", "all"}))
      ->capture_default_str();
  add_size_range_options(sweep, &sa.range);
  add_common_sweep_options(sweep, &sa);
  sweep->add_option("--crossovers", sa.crossover_rounds,
                    "after the sweep, N rounds of every fixed allreduce algorithm at its sizes: "
                    "where each starts beating another, measured and as the cost model fitted "
                    "to them predicts (the algos table)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sweep->add_option("--json", json_path, "also write the results as JSON");

  CLI::App* alias = app.add_subcommand("allreduce", "allreduce over a list of sizes (a sweep)");
  alias->add_option("--sizes", sa.sizes, "message sizes in bytes (K/M/G suffixes)")
      ->delimiter(',')
      ->check(kSize)
      ->capture_default_str();
  add_common_sweep_options(alias, &sa);
  alias->add_option("--json", json_path, "also write the results as JSON");

  TrainArgs ta;
  CLI::App* train = app.add_subcommand("train",
                                       "synthetic data-parallel training, real models' "
                                       "gradient lists, quorum vs raw MPI baselines");
  train->add_option("--model", ta.model, "gradient list")
      ->check(CLI::IsMember(model_names()))
      ->capture_default_str();
  train->add_option("--steps", ta.steps, "timed steps")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  train->add_option("--warmup", ta.warmup, "untimed steps first")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  train->add_option("--compute-ms", ta.compute_ms, "backward compute per step")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  train->add_option("--jitter", ta.jitter, "compute varies uniformly by +- this fraction")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  train->add_option("--straggler", ta.straggler,
                    "rank:probability:slowdown, e.g. 1:0.5:1.5 (rank 1 1.5x slower on half the "
                    "steps)");
  train->add_option("--seed", ta.seed, "gradient contents and compute jitter")
      ->capture_default_str();
  train->add_option("--progress-s", ta.progress_s, "seconds between progress lines on stderr")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  train->add_option("--json", json_path, "also write the results as JSON");

  AlgosArgs aa;
  CLI::App* algos = app.add_subcommand(
      "algos",
      "QUORUM_ALGO=auto against native, ring, tree and hierarchical, interleaved in one run");
  add_size_range_options(algos, &aa.range);
  algos->add_option("--dtype", aa.dtype, "element type")->check(kDtype)->capture_default_str();
  algos->add_option("--rounds", aa.options.rounds, "rounds; each runs every setting once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  algos->add_option("--reps", aa.options.reps, "timed repetitions per round, size and setting")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  algos->add_option("--warmup", aa.options.warmup,
                    "untimed repetitions per round, size and setting (auto explores during them)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  algos->add_option("--warmup-s", aa.options.warmup_seconds, "cap on the warm-up's time")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  algos->add_option("--seed", aa.options.seed, "data seed")->capture_default_str();
  algos->add_option("--json", json_path, "also write the results as JSON");

  CoordBenchArgs ca;
  std::string coord_json;
  CLI::App* coord = app.add_subcommand(
      "coordinator",
      "rank 0's real CoordinatorService under N simulated ranks, coordinator path vs fast path "
      "(a plain process: no MPI, no mpiexec)");
  coord->add_option("--ranks", ca.ranks, "simulated ranks")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  coord->add_option("--tensors", ca.tensors, "gradients per step (161: ResNet-50's list)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  coord->add_option("--steps", ca.steps, "training steps")
      ->check(CLI::Range(2, 1 << 20))
      ->capture_default_str();
  coord->add_option("--warmup", ca.warmup, "coordinator-path steps left out of the medians")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  coord->add_option("--seed", ca.sim.seed, "jitter and swaps")->capture_default_str();
  coord->add_option("--step-ms", ca.sim.step_ms, "virtual step time")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  coord->add_option("--skew-us", ca.sim.skew_us, "each rank starts backward up to this late")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  coord->add_option("--swap", ca.sim.swap, "chance a rank swaps two close neighbours")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  coord->add_option("--swap-gap-us", ca.sim.swap_gap_us, "neighbours this close may swap")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  coord->add_flag("--swap-per-step", ca.sim.swap_per_step,
                  "draw the swapped pairs afresh every step (default: once per rank)");
  coord->add_option("--latency-us", ca.sim.latency_us, "one-way control-message latency")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  coord->add_option("--cycle-ms", ca.sim.cycle_ms, "QUORUM_CYCLE_TIME_MS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  CLI::Option* coord_json_opt =
      coord->add_option("--json", coord_json, "JSON instead of the table (or also, into FILE)")
          ->expected(0, 1);

  ConvergeArgs cv;
  CLI::App* converge = app.add_subcommand(
      "converge",
      "real MLP training to a held-out loss under this run's QUORUM_SYNC_MODE/QUORUM_COMPRESSION, "
      "with simulated stragglers (scripts/converge.sh runs the matrix)");
  converge->add_option("--model", cv.model, "mlp (16-64-64-1) or wide (64-1536-1536-1)")
      ->check(CLI::IsMember({"mlp", "wide"}))
      ->capture_default_str();
  converge->add_option("--straggler", cv.straggler,
                       "none, transient (a random rank 1.5-3x slower, with --transient-p per "
                       "step) or persistent (the last rank 2x slower every step)")
      ->check(CLI::IsMember({"none", "transient", "persistent"}))
      ->capture_default_str();
  converge->add_option("--steps", cv.steps, "training steps")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  converge->add_option("--batch", cv.batch, "global batch (divisible by the rank count)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  converge->add_option("--samples", cv.samples, "training samples")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  converge->add_option("--held-out", cv.held_out, "held-out samples")
      ->check(CLI::Range(1, 1 << 22))
      ->capture_default_str();
  converge->add_option("--eval-every", cv.eval_every, "steps between held-out evaluations")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  converge->add_option("--lr", cv.lr, "SGD learning rate")->capture_default_str();
  converge->add_option("--compute-ms", cv.compute_ms, "simulated compute per step (sleep)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  converge->add_option("--transient-p", cv.transient_p, "transient: straggler chance per step")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  converge->add_option("--seed", cv.seed, "dataset and straggler seed")->capture_default_str();
  converge->add_flag("--curve", cv.curve, "print every evaluation (step, seconds, loss)");
  converge->add_flag("--catch-up", cv.catch_up,
                     "a rank behind on bounded rounds skips the step's compute and takes the "
                     "rounds it missed (quorum::enqueue_catch_up)");

  CLI11_PARSE(app, argc, argv);

  // A simulation: it never starts MPI, so it runs without mpiexec.
  if (coord->parsed()) {
    const bool to_stdout = coord_json_opt->count() > 0 && coord_json.empty();
    return run_coordinator_bench(ca, to_stdout ? "-" : coord_json);
  }

  // Everything the command line alone can refute, before MPI starts.
  SweepOptions so;
  TrainOptions to;
  std::optional<Model> model;
  const bool is_train = train->parsed();
  if (is_train) {
    model = make_model(ta.model);
    to.steps = ta.steps;
    to.warmup = ta.warmup;
    to.compute = {ta.compute_ms, ta.jitter, {}, ta.seed};
    to.progress_seconds = ta.progress_s;
    if (!ta.straggler.empty() && !parse_straggler(ta.straggler, &to.compute.straggler)) {
      return usage_error(
          "--straggler: expected rank:probability:slowdown with probability in "
          "[0,1] and slowdown > 0, e.g. 1:0.5:1.5");
    }
  } else if (algos->parsed()) {
    parse_dtype(aa.dtype, &aa.options.dtype);
    if (std::string e = range_sizes(aa.range, &aa.options.sizes); !e.empty()) {
      return usage_error(e);
    }
  } else if (std::string e = sweep_options(sa, alias->parsed(), &so); !e.empty()) {
    return usage_error(e);
  }

  Session session;
  if (!session.start(&argc, &argv)) return kExitWrong;
  const bool printer = quorum::rank() == 0;

  if (is_train) {
    if (to.compute.straggler.rank >= quorum::size()) {
      if (printer) {
        usage_error("--straggler: rank " + std::to_string(to.compute.straggler.rank) +
                    " but only " + std::to_string(quorum::size()) + " ranks");
      }
      return kExitUsage;
    }
    const RunInfo info = gather_run_info("train", train_settings(ta, *model, to));
    if (printer) {
      std::fputs(header_text(info).c_str(), stdout);
      std::fflush(stdout);
    }
    const TrainResult r = run_train(to, *model);
    return finish(json_path, train_json(info, *model, r), r.wrong);
  }

  if (converge->parsed()) {
    if (cv.samples < cv.batch) return usage_error("--samples must be at least --batch");
    return run_converge(cv);
  }

  if (algos->parsed()) {
    const AlgosOptions& o = aa.options;
    const RunInfo info = gather_run_info(
        "algos",
        {{"sizes", format_size(o.sizes.front()) + " .. " + format_size(o.sizes.back()) + ", x" +
                       std::to_string(aa.range.factor)},
         {"dtype", aa.dtype},
         {"settings", "QUORUM_ALGO=auto|native|ring|tree|hierarchical, quorum restarted for each; order "
                      "rotates by round"},
         {"repetitions", std::to_string(o.rounds) + " rounds x " + std::to_string(o.reps) +
                             " timed, after up to " + std::to_string(o.warmup) +
                             " warm-up (at most " + fixed(o.warmup_seconds, 1) + " s)"},
         {"seed", std::to_string(o.seed)}});
    if (printer) {
      std::fputs(header_text(info).c_str(), stdout);
      std::fflush(stdout);
    }
    quorum::shutdown();  // run_algos starts quorum once per setting
    const MpiTypes mpi;
    const AlgosResult r = run_algos(o, mpi);
    return finish(json_path, algos_json(info, r), r.wrong);
  }

  const bool list = alias->parsed();
  const RunInfo info = gather_run_info(list ? "allreduce" : "sweep", sweep_settings(sa, list, so));
  if (printer) {
    std::fputs(header_text(info).c_str(), stdout);
    std::fflush(stdout);
  }
  const MpiTypes mpi;
  const SweepResult r = run_sweep(so, mpi);
  long long wrong = r.wrong;
  const bool allreduce = std::find(so.collectives.begin(), so.collectives.end(),
                                   Collective::kAllreduce) != so.collectives.end();
  if (sa.crossover_rounds > 0 && allreduce && wrong == 0) {
    AlgosOptions ao;
    ao.sizes = so.sizes;
    ao.dtype = so.dtype;
    ao.rounds = sa.crossover_rounds;
    ao.reps = so.reps > 0 ? so.reps : 5;
    ao.seed = so.seed;
    if (printer) {
      std::printf("#\n# --crossovers %d: every QUORUM_ALGO setting at the sweep's sizes, %d timed "
                  "repetitions per round after up to %d warm-up (at most %.1f s)\n",
                  ao.rounds, ao.reps, ao.warmup, ao.warmup_seconds);
      std::fflush(stdout);
    }
    quorum::shutdown();  // run_algos starts quorum once per setting
    wrong += run_algos(ao, mpi).wrong;
  }
  return finish(json_path, sweep_json(info, so, r), wrong);
}

}  // namespace
}  // namespace quorum::bench

int main(int argc, char** argv) { return quorum::bench::run(argc, argv); }
