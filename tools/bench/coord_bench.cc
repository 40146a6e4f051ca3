#include "tools/bench/coord_bench.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "tools/bench/models.h"
#include "tools/bench/report.h"
#include "tools/bench/stats.h"

namespace quorum::bench {
namespace {

// The figures the table reports, from one step.
struct Figures {
  double cpu_us, msgs_in, msgs_out, bytes_in, bytes_out, in_per_rank, out_per_rank, plans;
};

Figures figures(const SimStep& s, int ranks) {
  const double n = ranks;
  return {s.cpu_us,
          static_cast<double>(s.msgs_in),
          static_cast<double>(s.msgs_out),
          static_cast<double>(s.bytes_in),
          static_cast<double>(s.bytes_out),
          static_cast<double>(s.msgs_in) / n,
          static_cast<double>(s.msgs_out) / n,
          static_cast<double>(s.plans)};
}

// Median and mean of each figure over `steps`.
std::pair<Figures, Figures> summarize_steps(const std::vector<SimStep>& steps, int ranks) {
  std::vector<std::vector<double>> cols(8);
  for (const SimStep& s : steps) {
    const Figures f = figures(s, ranks);
    const double v[8] = {f.cpu_us, f.msgs_in, f.msgs_out, f.bytes_in,
                         f.bytes_out, f.in_per_rank, f.out_per_rank, f.plans};
    for (int i = 0; i < 8; ++i) cols[static_cast<size_t>(i)].push_back(v[i]);
  }
  double med[8] = {}, mean[8] = {};
  for (size_t i = 0; i < 8; ++i) {
    med[i] = median(cols[i]);
    for (double x : cols[i]) mean[i] += x;
    if (!cols[i].empty()) mean[i] /= static_cast<double>(cols[i].size());
  }
  auto pack = [](const double* v) { return Figures{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}; };
  return {pack(med), pack(mean)};
}

nlohmann::json figures_json(const Figures& f) {
  return {{"cpu_us", f.cpu_us},
          {"msgs_in", f.msgs_in},
          {"msgs_out", f.msgs_out},
          {"bytes_in", f.bytes_in},
          {"bytes_out", f.bytes_out},
          {"msgs_in_per_rank", f.in_per_rank},
          {"msgs_out_per_rank", f.out_per_rank},
          {"plans", f.plans}};
}

struct PathRun {
  std::string name;
  SimResult result;
  int first_steady = 0;  // steps from here on are the steady state
  Figures median{}, mean{};
  size_t steady_steps = 0;
};

PathRun run_path(const CoordBenchArgs& a, const std::vector<SimTensor>& tensors, bool fast) {
  CoordSimOptions o = a.sim;
  o.ranks = a.ranks;
  o.steps = a.steps;
  o.fast_path = fast;
  PathRun p{fast ? "fast" : "slow", simulate_coordinator(o, tensors)};
  // Coordinator path: after the warm-up. Fast path: after the step whose window issued the
  // schedule; none issued, it ran the coordinator path throughout: after the warm-up too.
  p.first_steady = fast && p.result.first_schedule_step >= 0
                       ? p.result.first_schedule_step + 1
                       : std::min(a.warmup, a.steps - 1);
  std::vector<SimStep> steady(p.result.steps.begin() + std::min(p.first_steady, a.steps),
                              p.result.steps.end());
  p.steady_steps = steady.size();
  std::tie(p.median, p.mean) = summarize_steps(steady, a.ranks);
  return p;
}

nlohmann::json path_json(const PathRun& p) {
  const SimResult& r = p.result;
  nlohmann::json steps = nlohmann::json::array();
  for (size_t i = 0; i < r.steps.size(); ++i) {
    const SimStep& s = r.steps[i];
    steps.push_back({{"step", i},
                     {"cpu_us", s.cpu_us},
                     {"msgs_in", s.msgs_in},
                     {"msgs_out", s.msgs_out},
                     {"bytes_in", s.bytes_in},
                     {"bytes_out", s.bytes_out},
                     {"readies_in", s.readies_in},
                     {"reports_in", s.reports_in},
                     {"exits_in", s.exits_in},
                     {"plans", s.plans},
                     {"fast_entries", s.fast_entries},
                     {"on_schedule", s.on_schedule}});
  }
  return {{"first_steady_step", p.first_steady},
          {"schedule_issued", r.schedules_issued > 0},
          {"steady_steps", p.steady_steps},
          {"median", figures_json(p.median)},
          {"mean", figures_json(p.mean)},
          {"schedules_issued", r.schedules_issued},
          {"first_schedule_step", r.first_schedule_step},
          {"fallbacks", r.fallbacks},
          {"fast_exits", r.fast_exits},
          {"heartbeats_per_s",
           {{"msgs_in", r.heartbeats_in_per_s},
            {"msgs_out", r.heartbeats_out_per_s},
            {"bytes_in", r.heartbeat_bytes_in_per_s},
            {"bytes_out", r.heartbeat_bytes_out_per_s},
            {"on_tick_cpu_us", r.tick_cpu_us}}},
          {"wall_s", r.wall_s},
          {"log", r.log},
          {"steps", steps}};
}

void print_row(const std::string& label, size_t steps, const Figures& f) {
  std::printf(" %-12s %5zu %10.1f %9.0f %9.0f %11.0f %11.0f %8.3f %8.3f %6.0f\n", label.c_str(),
              steps, f.cpu_us, f.msgs_in, f.msgs_out, f.bytes_in, f.bytes_out, f.in_per_rank,
              f.out_per_rank, f.plans);
}

}  // namespace

std::vector<SimTensor> sim_tensors(int count, uint64_t seed, std::string* source) {
  std::vector<SimTensor> out;
  std::vector<double> cost;
  if (count == 161) {
    const Model m = *make_model("resnet50");
    *source = "resnet50";
    for (const Param& p : m.params) {
      out.push_back({p.name, p.numel, 0});
      cost.push_back(p.cost);
    }
  } else {
    // Log-uniform sizes from 64 to 2.4 M floats (ResNet-50's range), backward cost by size.
    *source = "synthetic";
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(std::log(64.0), std::log(2.4e6));
    for (int i = 0; i < count; ++i) {
      const auto numel = static_cast<int64_t>(std::exp(u(rng)));
      out.push_back({"layer" + std::to_string(i) + ".weight", numel, 0});
      cost.push_back(static_cast<double>(numel));
    }
  }
  // Backward produces the last parameter first; a gradient is ready once its share is done.
  double total = 0;
  for (double c : cost) total += c;
  double done = 0;
  for (size_t i = out.size(); i-- > 0;) {
    done += cost[i];
    out[i].ready_at = total > 0 ? done / total : 0;
  }
  return out;
}

int run_coordinator_bench(const CoordBenchArgs& a, const std::string& json_path) {
  std::string source;
  const std::vector<SimTensor> tensors = sim_tensors(a.tensors, a.sim.seed, &source);
  const PathRun slow = run_path(a, tensors, false);
  const PathRun fast = run_path(a, tensors, true);
  const CoordSimOptions& o = a.sim;
  nlohmann::json j = {
      {"command", "coordinator"},
      {"ranks", a.ranks},
      {"tensors", a.tensors},
      {"gradients", source},
      {"steps", a.steps},
      {"warmup", a.warmup},
      {"seed", o.seed},
      {"settings",
       {{"step_ms", o.step_ms},
        {"skew_us", o.skew_us},
        {"swap", o.swap},
        {"swap_gap_us", o.swap_gap_us},
        {"swap_per_step", o.swap_per_step},
        {"latency_us", o.latency_us},
        {"cycle_ms", o.cycle_ms}}},
      {"slow", path_json(slow)},
      {"fast", path_json(fast)}};
  if (json_path == "-") {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf(
      "# quorum-bench coordinator: rank 0's CoordinatorService with %d simulated ranks, %d "
      "tensors (%s), %d steps, seed %llu\n",
      a.ranks, a.tensors, source.c_str(), a.steps, static_cast<unsigned long long>(o.seed));
  std::printf(
      "# virtual clock: %.0f ms steps, backward over 80%% of each, rank skew up to %.0f us, "
      "neighbour swaps %.0f%% (within %.0f us, drawn %s), latency %.0f us, cycle %.1f ms, "
      "QUORUM_SYNC_MODE=auto\n",
      o.step_ms, o.skew_us, o.swap * 100, o.swap_gap_us, o.swap_per_step ? "every step" : "per rank",
      o.latency_us, o.cycle_ms);
  std::printf(
      "# per step at rank 0, steady state (slow: after %d warm-up steps; fast: after the step "
      "that issued the schedule); cpu = service calls only; mean: FastReports come every 8th "
      "step\n",
      a.warmup);
  std::printf("#path        steps     cpu_us   msgs_in  msgs_out    bytes_in   bytes_out  in/rank "
              "out/rank  plans\n");
  for (const PathRun* p : {&slow, &fast}) {
    print_row(p->name + " median", p->steady_steps, p->median);
    print_row(p->name + " mean", p->steady_steps, p->mean);
  }
  const SimResult& f = fast.result;
  if (f.schedules_issued == 0) {
    std::printf("# fast path: NO schedule was issued: the coordinator never saw a step's plans "
                "repeat (with per-rank swaps the plan order follows whichever rank came last)\n");
  }
  std::printf("# fast path: schedule first issued in step %d; %llu issued, %llu left "
              "(%llu FastExit received)\n",
              f.first_schedule_step, static_cast<unsigned long long>(f.schedules_issued),
              static_cast<unsigned long long>(f.fallbacks),
              static_cast<unsigned long long>(f.fast_exits));
  std::printf("# heartbeats, per second and not per step: %.0f in (%.0f B), %.0f out (%.0f B); "
              "on_tick %.1f us\n",
              f.heartbeats_in_per_s, f.heartbeat_bytes_in_per_s, f.heartbeats_out_per_s,
              f.heartbeat_bytes_out_per_s, f.tick_cpu_us);
  for (const PathRun* p : {&slow, &fast}) {
    for (const std::string& line : p->result.log) {
      std::printf("# %s path, coordinator log: %s\n", p->name.c_str(), line.c_str());
    }
  }
  std::printf("# simulated in %.2f s (slow) + %.2f s (fast)\n", slow.result.wall_s, f.wall_s);
  std::fflush(stdout);
  if (!json_path.empty()) {
    if (Status s = write_json(json_path, j); !s.is_ok()) {
      std::fprintf(stderr, "quorum-bench: %s\n", s.message().c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace quorum::bench
