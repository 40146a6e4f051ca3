#include "coordinator/sync_policy.h"

#include <algorithm>
#include <cstdio>
#include <map>

namespace quorum::coord {
namespace {

std::string percent(double f) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", 100.0 * f);
  return buf;
}

}  // namespace

SyncPolicy::SyncPolicy(PolicyOptions options) : opt_(options), mode_(options.initial) {}

void SyncPolicy::observe_round(const std::vector<Clock::time_point>& arrivals) {
  if (arrivals.empty()) return;
  std::vector<std::pair<Clock::time_point, int>> order;
  for (size_t r = 0; r < arrivals.size(); ++r) order.push_back({arrivals[r], static_cast<int>(r)});
  std::sort(order.begin(), order.end());
  size_t q = static_cast<size_t>(std::clamp(opt_.quorum, 1, static_cast<int>(order.size())));
  double wait = std::chrono::duration<double>(order.back().first - order[q - 1].first).count();
  rounds_.push_back({order.front().first, wait, order.back().second});
  while (rounds_.size() > static_cast<size_t>(opt_.window) + 1) rounds_.pop_front();
}

void SyncPolicy::observe_staleness_wait(int rank) {
  staleness_waits_.push_back(rank);
  while (staleness_waits_.size() > static_cast<size_t>(opt_.window)) staleness_waits_.pop_front();
}

double SyncPolicy::waiting_fraction() const {
  // Step time: between the first arrivals of consecutive rounds; the newest round's own step
  // is not over yet, so the window's waits are set against the spans that are.
  if (rounds_.size() < 2) return 0;
  double span = std::chrono::duration<double>(rounds_.back().first - rounds_.front().first).count();
  double wait = 0;
  for (size_t i = 0; i + 1 < rounds_.size(); ++i) wait += rounds_[i].wait_s;
  return span > 0 ? wait / span : 0;
}

std::pair<int, double> SyncPolicy::usual_last() const {
  std::map<int, int> counts;
  for (const Round& r : rounds_) counts[r.last_rank]++;
  auto best = std::max_element(counts.begin(), counts.end(),
                               [](auto& a, auto& b) { return a.second < b.second; });
  if (best == counts.end()) return {-1, 0};
  return {best->first, static_cast<double>(best->second) / static_cast<double>(rounds_.size())};
}

std::optional<ModeSwitch> SyncPolicy::decide() {
  if (!opt_.automatic || opt_.size < 2) return std::nullopt;
  if (rounds_.size() < static_cast<size_t>(opt_.window) + 1) return std::nullopt;
  double f = waiting_fraction();
  std::optional<ModeSwitch> out;
  if (mode_ == SyncMode::kSync) {
    auto [rank, share] = usual_last();
    if (f > opt_.enter) {
      if (share >= opt_.persistent_share) {
        // One rank is late nearly every round: bounded rounds would only hit the staleness
        // bound on it. Stay exact.
        persistent_noted_ = true;
      } else {
        out = ModeSwitch{SyncMode::kBounded, "waiting for stragglers is " + percent(f) +
                                                 " of step time (enter above " +
                                                 percent(opt_.enter) + ")"};
      }
    }
  } else {
    std::map<int, int> hits;
    for (int r : staleness_waits_) hits[r]++;
    auto worst = std::max_element(hits.begin(), hits.end(),
                                  [](auto& a, auto& b) { return a.second < b.second; });
    double share = worst == hits.end()
                       ? 0
                       : static_cast<double>(worst->second) / static_cast<double>(opt_.window);
    if (share >= opt_.persistent_share) {
      out = ModeSwitch{SyncMode::kSync,
                       "rank " + std::to_string(worst->first) +
                           " is a persistent straggler (held back " +
                           std::to_string(worst->second) + " of the last " +
                           std::to_string(opt_.window) + " rounds at the staleness bound)"};
    } else if (f < opt_.exit) {
      out = ModeSwitch{SyncMode::kSync, "waiting for stragglers fell to " + percent(f) +
                                            " of step time (exit below " + percent(opt_.exit) +
                                            ")"};
    }
  }
  if (out) {
    mode_ = out->mode;
    rounds_.clear();  // judge the new mode on its own rounds
    staleness_waits_.clear();
  }
  return out;
}

}  // namespace quorum::coord
