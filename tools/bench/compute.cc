#include "tools/bench/compute.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <random>
#include <string>

namespace quorum::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Keeps the work observable so the compiler cannot drop it.
volatile float g_sink = 0;

// One unit: 8 independent multiply-add chains, 32 deep (256 multiply-adds), in registers: the
// cost is the core's arithmetic, not memory bandwidth.
void work(uint64_t units) {
  float a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  for (uint64_t u = 0; u < units; ++u) {
    for (int k = 0; k < 32; ++k) {
      for (float& x : a) x = x * 0.9999f + 0.0001f;
    }
  }
  float s = 0;
  for (float x : a) s += x;
  g_sink = g_sink + s;
}

bool parse_number(std::string_view text, double* out) {
  // std::from_chars for double is in GCC 11+; the text is short, a copy is cheap.
  const std::string s(text);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size()) return false;
  *out = v;
  return true;
}

}  // namespace

double BusyCompute::measure_units_per_ms() {
  double best = 0;
  for (int trial = 0; trial < 5; ++trial) {
    uint64_t units = 0, batch = 64;
    const auto t0 = Clock::now();
    double ms = 0;
    while (ms < 10) {
      work(batch);
      units += batch;
      batch = std::min<uint64_t>(batch * 2, 1 << 14);
      ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    }
    best = std::max(best, static_cast<double>(units) / ms);
  }
  return best;
}

void BusyCompute::run_ms(double ms) {
  const double units = ms * units_per_ms_ + carry_;
  const auto whole = static_cast<uint64_t>(std::max(units, 0.0));
  carry_ = units - static_cast<double>(whole);
  work(whole);
}

bool parse_straggler(std::string_view text, Straggler* out) {
  const size_t a = text.find(':');
  const size_t b = a == std::string_view::npos ? a : text.find(':', a + 1);
  if (b == std::string_view::npos) return false;
  Straggler s;
  const std::string_view rank = text.substr(0, a);
  const auto [end, ec] = std::from_chars(rank.data(), rank.data() + rank.size(), s.rank);
  if (rank.empty() || ec != std::errc() || end != rank.data() + rank.size() || s.rank < 0) {
    return false;
  }
  if (!parse_number(text.substr(a + 1, b - a - 1), &s.probability) ||
      !parse_number(text.substr(b + 1), &s.slowdown)) {
    return false;
  }
  if (!(s.probability >= 0 && s.probability <= 1) || !(s.slowdown > 0)) return false;
  *out = s;
  return true;
}

std::vector<double> step_compute_ms(const ComputeSchedule& schedule, int rank, int steps) {
  std::mt19937_64 rng(schedule.seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(rank) + 1);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> ms(static_cast<size_t>(steps));
  for (double& m : ms) {
    const double jitter = schedule.jitter * (2 * unit(rng) - 1);
    const bool slow = rank == schedule.straggler.rank && unit(rng) < schedule.straggler.probability;
    m = std::max(0.0, schedule.compute_ms * (1 + jitter)) *
        (slow ? schedule.straggler.slowdown : 1);
  }
  return ms;
}

}  // namespace quorum::bench
