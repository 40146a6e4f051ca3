// stats.h — order statistics of timing samples, and the "slowest rank" reduction every table
// reports. The reductions are collective over MPI_COMM_WORLD: every rank calls them in the
// same order.
#pragma once

#include <chrono>
#include <vector>

namespace quorum::bench {

// Seconds from `t0` until now.
double seconds_since(std::chrono::steady_clock::time_point t0);

// Median and minimum of a set of samples (0 for an empty set).
struct Summary {
  double median = 0;
  double min = 0;
};
Summary summarize(std::vector<double> samples);
double median(std::vector<double> samples);
// Median over i of num[i] / den[i], pairing samples taken back to back (steadier than a ratio of
// medians when the machine's speed drifts); pairs with den[i] <= 0 are skipped, 0 if none is left.
double paired_median(const std::vector<double>& num, const std::vector<double>& den);

// Element-wise maximum over all ranks, delivered to rank 0 (MPI_Reduce MAX); other ranks get
// their own values back.
std::vector<double> max_to_root(const std::vector<double>& local);
// Element-wise sum over all ranks, delivered to rank 0.
std::vector<double> sum_to_root(const std::vector<double>& local);
// Maximum over all ranks, on every rank (MPI_Allreduce MAX).
double max_everywhere(double local);
// Sum over all ranks, on every rank.
long long sum_everywhere(long long local);

}  // namespace quorum::bench
