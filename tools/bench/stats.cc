#include "tools/bench/stats.h"

#include <mpi.h>

#include <algorithm>
#include <utility>

namespace quorum::bench {
namespace {

std::vector<double> reduce_to_root(const std::vector<double>& local, MPI_Op op) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::vector<double> out(local.size());
  MPI_Reduce(local.data(), out.data(), static_cast<int>(local.size()), MPI_DOUBLE, op, 0,
             MPI_COMM_WORLD);
  return rank == 0 ? out : local;
}

}  // namespace

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  if (v.size() % 2) return v[mid];
  const double upper = v[mid];
  const double lower = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return 0.5 * (lower + upper);
}

double paired_median(const std::vector<double>& num, const std::vector<double>& den) {
  std::vector<double> ratios;
  for (size_t i = 0; i < num.size() && i < den.size(); ++i) {
    if (den[i] > 0) ratios.push_back(num[i] / den[i]);
  }
  return median(std::move(ratios));
}

Summary summarize(std::vector<double> samples) {
  if (samples.empty()) return {};
  const double lowest = *std::min_element(samples.begin(), samples.end());
  return {median(std::move(samples)), lowest};
}

std::vector<double> max_to_root(const std::vector<double>& local) {
  return reduce_to_root(local, MPI_MAX);
}

std::vector<double> sum_to_root(const std::vector<double>& local) {
  return reduce_to_root(local, MPI_SUM);
}

double max_everywhere(double local) {
  double out = local;
  MPI_Allreduce(&local, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return out;
}

long long sum_everywhere(long long local) {
  long long out = local;
  MPI_Allreduce(&local, &out, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  return out;
}

}  // namespace quorum::bench
