// quorum-bench: allreduce latency and bandwidth through quorum's public API (enqueue to
// completion) next to raw MPI_Allreduce of the same bytes, measured in the same run. Every
// result is verified element by element; a wrong element exits non-zero.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "quorum/quorum.h"
#include "tests/common/test_data.h"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

size_t parse_size(const std::string& s) {
  size_t scale = 1;
  std::string digits = s;
  switch (s.empty() ? ' ' : s.back()) {
    case 'K': scale = 1u << 10; digits.pop_back(); break;
    case 'M': scale = 1u << 20; digits.pop_back(); break;
    case 'G': scale = 1u << 30; digits.pop_back(); break;
    default: break;
  }
  return std::stoull(digits) * scale;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"quorum-bench: quorum vs raw MPI (run under mpiexec)"};
  app.require_subcommand(1);
  auto* ar = app.add_subcommand("allreduce", "f32 Sum allreduce, enqueue to completion, vs MPI_Allreduce");
  std::vector<std::string> sizes{"4K", "64K", "1M", "16M", "64M"};
  int reps = 20, warmup = 3;
  ar->add_option("--sizes", sizes, "message sizes in bytes (K/M/G suffixes)")->delimiter(',');
  ar->add_option("--reps", reps, "timed repetitions per size (median reported)")->check(CLI::PositiveNumber);
  ar->add_option("--warmup", warmup, "untimed repetitions first");
  CLI11_PARSE(app, argc, argv);

  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  if (quorum::Status s = quorum::init(); !s.is_ok()) {
    std::fprintf(stderr, "quorum::init: %s\n", s.message().c_str());
    return 1;
  }
  const int rank = quorum::rank(), size = quorum::size();
  if (rank == 0) {
    std::printf("# quorum-bench allreduce: %d ranks, f32 sum, median of %d reps (+%d warm-up)\n", size,
                reps, warmup);
    std::printf("%10s %14s %14s %8s %12s %12s\n", "bytes", "quorum_us", "mpi_us", "ratio",
                "algbw_GB/s", "busbw_GB/s");
  }
  int wrong = 0;
  for (const std::string& text : sizes) {
    const size_t bytes = parse_size(text);
    const size_t n = bytes / 4;
    const uint64_t seed = bytes;
    const auto input = quorum::testing::make_input(seed, rank, n, quorum::DataType::kF32);
    const auto want = quorum::testing::expected_allreduce(seed, size, n, quorum::DataType::kF32,
                                                          quorum::ReduceOp::kSum);
    std::vector<unsigned char> buf(input.size());
    quorum::Tensor t{buf.data(), quorum::DataType::kF32, {static_cast<int64_t>(n)}, quorum::Device::host()};
    std::vector<double> q_us, m_us;
    for (int i = 0; i < warmup + reps; ++i) {
      // quorum, enqueue to completion
      std::memcpy(buf.data(), input.data(), n * 4);
      MPI_Barrier(MPI_COMM_WORLD);
      auto t0 = Clock::now();
      quorum::Status s = quorum::wait(quorum::enqueue_allreduce("bench", t, t, quorum::ReduceOp::kSum));
      double q = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      if (!s.is_ok() || std::memcmp(buf.data(), want.data(), n * 4) != 0) ++wrong;
      // raw MPI, same bytes
      std::memcpy(buf.data(), input.data(), n * 4);
      MPI_Barrier(MPI_COMM_WORLD);
      t0 = Clock::now();
      MPI_Allreduce(MPI_IN_PLACE, buf.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      double m = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      if (std::memcmp(buf.data(), want.data(), n * 4) != 0) ++wrong;
      if (i >= warmup) {
        q_us.push_back(q);
        m_us.push_back(m);
      }
    }
    // Rank 0 reports the slowest rank's median.
    double local[2] = {median(q_us), median(m_us)}, worst[2];
    MPI_Reduce(local, worst, 2, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0) {
      double algbw = static_cast<double>(bytes) / (worst[0] * 1e-6) / 1e9;
      double busbw = algbw * 2.0 * (size - 1) / size;
      std::printf("%10zu %14.1f %14.1f %8.2f %12.3f %12.3f\n", bytes, worst[0], worst[1],
                  worst[0] / worst[1], algbw, busbw);
      std::fflush(stdout);
    }
  }
  int total_wrong = 0;
  MPI_Allreduce(&wrong, &total_wrong, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) {
    std::printf("# %s\n", total_wrong ? "WRONG RESULTS" : "all results verified");
  }
  quorum::shutdown();
  MPI_Finalize();
  return total_wrong ? 1 : 0;
}
