#include "tools/bench/algos.h"

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "tools/bench/checker.h"
#include "tools/bench/collective_case.h"
#include "tools/bench/crossover.h"
#include "tools/bench/stats.h"
#include "tools/bench/table.h"
#include "tools/bench/units.h"

namespace quorum::bench {
namespace {

struct Measured {
  double median_us = 0;  // slowest rank's, on rank 0
  std::array<uint64_t, 4> plans{};
  double intra_us = 0, inter_us = 0;  // per repetition, this rank's
  int hosts = 1, local_size = 1;
  int warmup = 0;
};

// One setting at one size: init, warm up, time, shut down.
Measured measure(const AlgosOptions& o, int setting, CollectiveCase& c, Checker& checker) {
  const char* name = kAlgoSettings[static_cast<size_t>(setting)];
  // quorum::init() reads its knobs from the environment; the comparison ends with quorum shut
  // down, so the user's QUORUM_ALGO is not needed again.
  setenv("QUORUM_ALGO", name, 1);
  const std::string impl = std::string("QUORUM_ALGO=") + name;
  Measured m;
  if (Status s = quorum::init(); !s.is_ok()) {
    checker.check(impl, -1, Status(s.code(), "init: " + s.message()));
    return m;
  }
  // The first call pays one-time costs (names, ids, buffers); its time on the slowest rank
  // bounds how many more fit in warmup_seconds, the same count on every rank.
  const double first = max_everywhere(timed_quorum_repetition(c, checker, impl, -1));
  const double fit = std::floor(o.warmup_seconds / std::max(first, 1e-9));
  m.warmup = 1 + static_cast<int>(std::clamp(fit, 0.0, double(std::max(o.warmup - 1, 0))));
  for (int i = 1; i < m.warmup; ++i) timed_quorum_repetition(c, checker, impl, -1 - i);
  const Stats before = quorum::stats();
  std::vector<double> us;
  for (int i = 0; i < o.reps; ++i) us.push_back(timed_quorum_repetition(c, checker, impl, i) * 1e6);
  const Stats after = quorum::stats();
  m.plans = {after.allreduce_native - before.allreduce_native,
             after.allreduce_ring - before.allreduce_ring,
             after.allreduce_tree - before.allreduce_tree,
             after.allreduce_hierarchical - before.allreduce_hierarchical};
  const double per_rep = o.reps > 0 ? 1e6 / o.reps : 0;
  m.intra_us = (after.hierarchical_intra_seconds - before.hierarchical_intra_seconds) * per_rep;
  m.inter_us = (after.hierarchical_inter_seconds - before.hierarchical_inter_seconds) * per_rep;
  m.hosts = quorum::host_count();
  m.local_size = quorum::local_size();
  m.median_us = max_to_root({median(us)})[0];
  quorum::shutdown();
  return m;
}

Table algos_table() {
  std::vector<Column> columns = {{"size", 9}, {"count", 10}};
  for (const char* s : kAlgoSettings) {
    columns.push_back({std::string(s) + "_us", 10, s == kAlgoSettings[0]});
  }
  columns.push_back({"best", 12, true});
  columns.push_back({"auto/best", 9});
  columns.push_back({"auto ran (native/ring/tree/hier)", 32, true});
  columns.push_back({"warmup", 6});
  return Table(std::move(columns));
}

std::vector<std::string> cells(const AlgosRow& r, DataType t) {
  std::vector<std::string> out = {std::to_string(r.bytes),
                                  std::to_string(r.bytes / dtype_size(t))};
  for (double us : r.median_us) out.push_back(fixed(us, 1));
  out.push_back(kAlgoSettings[static_cast<size_t>(r.best_fixed)]);
  out.push_back(fixed(r.auto_ratio, 2) + (r.wrong ? "  WRONG" : ""));
  std::string ran;
  for (uint64_t n : r.auto_plans) {
    if (!ran.empty()) ran += '/';
    ran += std::to_string(n);
  }
  out.push_back(ran);
  out.push_back(std::to_string(r.warmup));
  return out;
}

void summarise_row(AlgosRow* row) {
  for (int s = 0; s < kNumAlgoSettings; ++s) {
    row->median_us[static_cast<size_t>(s)] = median(row->rounds_us[static_cast<size_t>(s)]);
  }
  const auto& us = row->median_us;
  for (int s = 2; s < kNumAlgoSettings; ++s) {
    if (us[static_cast<size_t>(s)] < us[static_cast<size_t>(row->best_fixed)]) row->best_fixed = s;
  }
  row->intra_us = median(row->intra_rounds_us);
  row->inter_us = median(row->inter_rounds_us);
  // Paired within each round, so drift between rounds cancels.
  row->auto_ratio =
      paired_median(row->rounds_us[0], row->rounds_us[static_cast<size_t>(row->best_fixed)]);
}

}  // namespace

AlgosResult run_algos(const AlgosOptions& o, const MpiTypes& mpi) {
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const bool printer = rank == 0;
  AlgosResult result;
  std::vector<std::unique_ptr<CollectiveCase>> cases;
  std::vector<std::unique_ptr<Checker>> checkers;
  for (size_t bytes : o.sizes) {
    const uint64_t seed = o.seed * 1000003u + bytes * 7u;
    cases.push_back(std::make_unique<CollectiveCase>(Collective::kAllreduce, o.dtype, bytes, seed,
                                                     rank, ranks, mpi));
    checkers.push_back(std::make_unique<Checker>(*cases.back(), Collective::kAllreduce, o.dtype,
                                                 rank, &result.errors));
    result.rows.emplace_back();
    result.rows.back().bytes = cases.back()->bytes();
  }
  for (int round = 0; round < o.rounds; ++round) {
    for (size_t i = 0; i < cases.size(); ++i) {
      AlgosRow& row = result.rows[i];
      for (int k = 0; k < kNumAlgoSettings; ++k) {
        const int setting = (k + round) % kNumAlgoSettings;
        const Measured m = measure(o, setting, *cases[i], *checkers[i]);
        row.rounds_us[static_cast<size_t>(setting)].push_back(m.median_us);
        row.warmup = m.warmup;
        if (setting == 0) {
          for (size_t a = 0; a < m.plans.size(); ++a) row.auto_plans[a] += m.plans[a];
        }
        if (std::string_view(kAlgoSettings[static_cast<size_t>(setting)]) == "hierarchical") {
          row.intra_rounds_us.push_back(m.intra_us);
          row.inter_rounds_us.push_back(m.inter_us);
        }
        result.hosts = m.hosts;
        result.ranks_per_host = m.local_size;  // this rank's host; the largest one is taken below
      }
    }
    if (printer) {
      std::fprintf(stderr, "quorum-bench algos: round %d of %d done\n", round + 1, o.rounds);
    }
    long long wrong = 0;
    for (const auto& c : checkers) wrong += c->wrong();
    if (sum_everywhere(wrong) > 0) break;  // every rank stops after the same round
  }
  MPI_Allreduce(MPI_IN_PLACE, &result.ranks_per_host, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  const Table table = algos_table();
  if (printer) {
    std::printf("#\n# allreduce, %s sum, in place; enqueue to completion in us, slowest rank's "
                "median per round, median over rounds; auto/best paired within rounds\n",
                std::string(dtype_name(o.dtype)).c_str());
    std::fputs(table.header().c_str(), stdout);
  }
  double worst = 0;
  size_t worst_bytes = 0;
  for (size_t i = 0; i < result.rows.size(); ++i) {
    AlgosRow& row = result.rows[i];
    row.wrong = sum_everywhere(checkers[i]->wrong());
    result.wrong += row.wrong;
    summarise_row(&row);
    if (row.auto_ratio > worst) {
      worst = row.auto_ratio;
      worst_bytes = row.bytes;
    }
    if (printer) std::fputs(table.row(cells(row, o.dtype)).c_str(), stdout);
  }
  if (printer) {
    std::printf("# auto against the best fixed algorithm: at most %.2fx (at %s)\n", worst,
                format_size(worst_bytes).c_str());
    print_crossovers(result, ranks);
    std::fflush(stdout);
  }
  return result;
}

}  // namespace quorum::bench
