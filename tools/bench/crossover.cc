#include "tools/bench/crossover.h"

#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include "coordinator/cost_model.h"
#include "tools/bench/units.h"

namespace quorum::bench {
namespace {

using coord::Algorithm;

size_t setting_of(Algorithm a) { return static_cast<size_t>(a) + 1; }

// The smallest measured size from which `faster` had the lower median at that size and every
// larger one, with the size before it; nullopt if it never did at the largest size.
std::optional<std::pair<size_t, size_t>> measured(const AlgosResult& r, Algorithm faster,
                                                  Algorithm than) {
  std::optional<std::pair<size_t, size_t>> from;
  for (size_t i = r.rows.size(); i-- > 0;) {
    const auto& us = r.rows[i].median_us;
    if (!(us[setting_of(faster)] < us[setting_of(than)])) break;
    from = std::make_pair(i > 0 ? r.rows[i - 1].bytes : 0, r.rows[i].bytes);
  }
  return from;
}

std::string measured_text(const AlgosResult& r, Algorithm faster, Algorithm than) {
  const auto m = measured(r, faster, than);
  if (!m) return "never in this range";
  if (m->second == r.rows.front().bytes) return "at every size measured";
  return "between " + format_size(m->first) + " and " + format_size(m->second);
}

std::string predicted_text(const coord::CostModel& model, Algorithm faster, Algorithm than,
                           int ranks) {
  if (!model.fitted(faster) || !model.fitted(than)) return "not fitted";
  const std::optional<size_t> at = model.crossover_bytes(faster, than, ranks);
  if (!at) return "never";
  return *at == 0 ? "at every size" : "from " + format_bytes(static_cast<double>(*at));
}

}  // namespace

void print_crossovers(const AlgosResult& result, int ranks) {
  if (result.rows.empty() || ranks < 2) return;
  coord::CostModelOptions o;
  o.shape = {result.hosts, result.ranks_per_host};
  coord::CostModel model(o);
  for (const AlgosRow& row : result.rows) {
    for (Algorithm a : {Algorithm::kNative, Algorithm::kRing, Algorithm::kTree,
                        Algorithm::kHierarchical}) {
      model.observe(a, row.bytes, ranks, row.median_us[setting_of(a)] * 1e-6);
    }
    model.observe_levels(row.bytes, row.intra_us * 1e-6, row.inter_us * 1e-6);
  }
  std::printf("# crossovers (%d host%s, up to %d ranks each): measured medians | the cost model "
              "fitted to them\n",
              result.hosts, result.hosts == 1 ? "" : "s", result.ranks_per_host);
  const std::pair<Algorithm, Algorithm> pairs[] = {
      {Algorithm::kRing, Algorithm::kTree},
      {Algorithm::kHierarchical, Algorithm::kRing},
      {Algorithm::kHierarchical, Algorithm::kTree}};
  for (const auto& [faster, than] : pairs) {
    if (faster == Algorithm::kHierarchical && result.hosts < 2) continue;  // a ring on one host
    std::printf("#   %s beats %s: %s | %s\n", std::string(coord::algorithm_name(faster)).c_str(),
                std::string(coord::algorithm_name(than)).c_str(),
                measured_text(result, faster, than).c_str(),
                predicted_text(model, faster, than, ranks).c_str());
  }
  if (result.hosts > 1) {
    for (const AlgosRow& row : result.rows) {
      std::printf("#   hierarchical at %s: intra-host %.1f us, inter-host %.1f us (rank 0's)\n",
                  format_size(row.bytes).c_str(), row.intra_us, row.inter_us);
    }
    const coord::AlphaBeta intra = model.level_params(coord::Level::kIntra);
    const coord::AlphaBeta inter = model.level_params(coord::Level::kInter);
    std::printf("#   fitted levels: intra-host %.1f us + %.3f GB/s, inter-host %.1f us + %.3f GB/s\n",
                intra.alpha * 1e6, intra.beta > 0 ? 1e-9 / intra.beta : 0.0, inter.alpha * 1e6,
                inter.beta > 0 ? 1e-9 / inter.beta : 0.0);
  }
}

}  // namespace quorum::bench
