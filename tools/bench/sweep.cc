#include "tools/bench/sweep.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "quorum/quorum.h"
#include "tools/bench/checker.h"
#include "tools/bench/table.h"
#include "tools/bench/units.h"

namespace quorum::bench {
namespace {

using Clock = std::chrono::steady_clock;

Table sweep_table() {
  return Table({{"size", 9},
                {"count", 10},
                {"type", 4},
                {"quorum_us", 11, true},
                {"min_us", 10},
                {"algbw", 7},
                {"busbw", 7},
                {"mpi_us", 11, true},
                {"min_us", 10},
                {"algbw", 7},
                {"busbw", 7},
                {"quorum/mpi", 10, true},
                {"paired", 6},
                {"reps", 5}});
}

// One repetition of both implementations: each starts after a barrier, and its output is
// verified outside the timed region. Returns {quorum seconds, mpi seconds}.
std::pair<double, double> repetition(CollectiveCase& c, Checker& checker, int rep) {
  const double q = timed_quorum_repetition(c, checker, "quorum", rep);

  c.prepare_mpi();
  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = Clock::now();
  c.run_mpi();
  const double m = seconds_since(t0);
  checker.check("mpi", rep, Status::ok());
  return {q, m};
}

// Adaptive repetitions: a warm-up repetition's time (both implementations, preparation and
// checks included) on the slowest rank decides, so every rank arrives at the same count.
int choose_reps(const SweepOptions& o, double seconds_per_rep) {
  if (o.reps > 0) return o.reps;
  const double worst = max_everywhere(seconds_per_rep);
  const double want = std::ceil(o.target_seconds / std::max(worst, 1e-9));
  return static_cast<int>(std::clamp(want, double(o.min_reps), double(o.max_reps)));
}

SweepRow measure(const SweepOptions& o, Collective collective, size_t bytes, const MpiTypes& mpi,
                 SweepResult* result) {
  const int rank = quorum::rank(), ranks = quorum::size();
  const uint64_t seed = o.seed * 1000003u + bytes * 7u + static_cast<uint64_t>(collective);
  CollectiveCase c(collective, o.dtype, bytes, seed, rank, ranks, mpi);
  Checker checker(c, collective, o.dtype, rank, &result->errors);

  const int warmup = o.reps > 0 ? o.warmup : std::max(o.warmup, 1);
  double fastest_warmup = 0;  // the first call of a size pays one-time costs: take the fastest
  for (int i = 0; i < warmup; ++i) {
    const auto w0 = Clock::now();
    repetition(c, checker, -1 - i);
    const double s = seconds_since(w0);
    fastest_warmup = i == 0 ? s : std::min(fastest_warmup, s);
  }
  const int reps = choose_reps(o, fastest_warmup);

  std::vector<double> q_us, m_us;
  for (int i = 0; i < reps; ++i) {
    const auto [q, m] = repetition(c, checker, i);
    q_us.push_back(q * 1e6);
    m_us.push_back(m * 1e6);
  }
  const Summary qs = summarize(q_us), ms = summarize(m_us);
  const std::vector<double> worst =
      max_to_root({qs.median, qs.min, ms.median, ms.min, paired_median(q_us, m_us)});

  SweepRow row;
  row.collective = collective;
  row.bytes = c.bytes();
  row.count = c.count();
  row.reps = reps;
  row.quorum_us = {worst[0], worst[1]};
  row.mpi_us = {worst[2], worst[3]};
  row.paired = worst[4];
  const double factor = bus_factor(collective, ranks);
  const double gb = static_cast<double>(row.bytes) / 1e9;
  row.quorum_algbw = worst[0] > 0 ? gb / (worst[0] * 1e-6) : 0;
  row.mpi_algbw = worst[2] > 0 ? gb / (worst[2] * 1e-6) : 0;
  row.quorum_busbw = row.quorum_algbw * factor;
  row.mpi_busbw = row.mpi_algbw * factor;
  row.wrong = sum_everywhere(checker.wrong());
  return row;
}

std::vector<std::string> cells(const SweepRow& r, DataType t) {
  const double ratio = r.mpi_us.median > 0 ? r.quorum_us.median / r.mpi_us.median : 0;
  return {std::to_string(r.bytes),
          std::to_string(r.count),
          std::string(dtype_name(t)),
          fixed(r.quorum_us.median, 1),
          fixed(r.quorum_us.min, 1),
          fixed(r.quorum_algbw, 3),
          fixed(r.quorum_busbw, 3),
          fixed(r.mpi_us.median, 1),
          fixed(r.mpi_us.min, 1),
          fixed(r.mpi_algbw, 3),
          fixed(r.mpi_busbw, 3),
          fixed(ratio, 2),
          fixed(r.paired, 2),
          std::to_string(r.reps) + (r.wrong ? "  WRONG" : "")};
}

}  // namespace

std::vector<size_t> geometric_sizes(size_t min, size_t max, size_t factor) {
  std::vector<size_t> sizes;
  for (size_t s = std::max<size_t>(min, 1); s <= max; s *= factor) {
    sizes.push_back(s);
    if (s > max / factor) break;  // the next step would overflow or pass max
  }
  return sizes;
}

SweepResult run_sweep(const SweepOptions& o, const MpiTypes& mpi) {
  const bool printer = quorum::rank() == 0;
  const Table table = sweep_table();
  SweepResult result;
  for (Collective collective : o.collectives) {
    if (printer) {
      std::printf("#\n# %s, %s%s, %s; times in us, algbw/busbw in GB/s (nccl-tests definitions)\n",
                  std::string(collective_name(collective)).c_str(),
                  std::string(dtype_name(o.dtype)).c_str(),
                  collective == Collective::kAllreduce ? " sum" : "",
                  collective == Collective::kBroadcast   ? "root 0"
                  : collective == Collective::kAllgather ? "size = gathered output"
                                                         : "in place");
      std::fputs(table.header().c_str(), stdout);
      std::fflush(stdout);
    }
    for (size_t bytes : o.sizes) {
      const SweepRow row = measure(o, collective, bytes, mpi, &result);
      result.wrong += row.wrong;
      if (printer) {
        std::fputs(table.row(cells(row, o.dtype)).c_str(), stdout);
        std::fflush(stdout);
      }
      result.rows.push_back(row);
      if (row.wrong) return result;  // every rank saw the same sum
    }
  }
  return result;
}

}  // namespace quorum::bench
