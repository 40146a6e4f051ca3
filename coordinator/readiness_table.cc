#include "coordinator/readiness_table.h"

#include <algorithm>
#include <functional>

namespace quorum::coord {
namespace {

std::string shape_text(const std::vector<int64_t>& shape, size_t from = 0) {
  std::string s = "[";
  for (size_t i = from; i < shape.size(); ++i) {
    if (i > from) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string ranks_text(const std::vector<int>& ranks) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(ranks[i]);
  }
  return s;
}

// Groups ranks by the text `field` renders for them; returns "" when all agree, else
// "<what> A on ranks 0,2 but B on rank 1".
std::string compare_field(const std::vector<TensorRequest>& by_rank, const std::string& what,
                          const std::function<std::string(const TensorRequest&)>& field) {
  std::vector<std::pair<std::string, std::vector<int>>> groups;
  for (size_t r = 0; r < by_rank.size(); ++r) {
    std::string v = field(by_rank[r]);
    auto it = std::find_if(groups.begin(), groups.end(), [&](auto& g) { return g.first == v; });
    if (it == groups.end()) {
      groups.push_back({v, {static_cast<int>(r)}});
    } else {
      it->second.push_back(static_cast<int>(r));
    }
  }
  if (groups.size() <= 1) return "";
  std::string s = what + " " + groups[0].first + " on " + ranks_text(groups[0].second);
  for (size_t i = 1; i < groups.size(); ++i) {
    s += (i == 1 ? " but " : ", ") + groups[i].first + " on " + ranks_text(groups[i].second);
  }
  return s;
}

}  // namespace

size_t wire_bytes_of(const TensorRequest& r, int64_t dim0) {
  size_t elems = 1;
  for (size_t i = 0; i < r.shape.size(); ++i) {
    elems *= static_cast<size_t>(i == 0 ? dim0 : r.shape[i]);
  }
  bool half = r.dtype == DataType::kF16 || r.dtype == DataType::kBF16;
  return elems * (half ? 4 : dtype_size(r.dtype));
}

std::string describe_mismatch(const std::vector<TensorRequest>& by_rank) {
  const TensorRequest& first = by_rank.front();
  std::string head = "tensor '" + first.name + "': ";
  std::string m = compare_field(by_rank, "operation",
                                [](const TensorRequest& t) { return std::string(kind_name(t.kind)); });
  if (m.empty()) {
    m = compare_field(by_rank, "dtype",
                      [](const TensorRequest& t) { return std::string(dtype_name(t.dtype)); });
  }
  if (m.empty()) {
    m = compare_field(by_rank, "device", [](const TensorRequest& t) {
      return std::string(t.device == Device::Kind::kHost ? "host" : "cuda");
    });
  }
  if (m.empty() && first.kind == CollectiveKind::kAllreduce) {
    m = compare_field(by_rank, "reduce op",
                      [](const TensorRequest& t) { return std::string(op_name(t.op)); });
  }
  if (m.empty() && first.kind == CollectiveKind::kBroadcast) {
    m = compare_field(by_rank, "root", [](const TensorRequest& t) { return std::to_string(t.root); });
  }
  if (m.empty()) {
    if (first.kind == CollectiveKind::kAllgather) {
      m = compare_field(by_rank, "number of dimensions",
                        [](const TensorRequest& t) { return std::to_string(t.shape.size()); });
      if (m.empty()) {
        m = compare_field(by_rank, "shape after the first dimension",
                          [](const TensorRequest& t) { return shape_text(t.shape, 1); });
      }
    } else {
      m = compare_field(by_rank, "shape",
                        [](const TensorRequest& t) { return shape_text(t.shape); });
    }
  }
  return m.empty() ? "" : head + m;
}

std::optional<RoundOutcome> ReadinessTable::submit(int rank, uint32_t id,
                                                   const TensorRequest& request, int64_t dim0,
                                                   Clock::time_point now) {
  auto [it, inserted] = rounds_.try_emplace(id);
  Round& round = it->second;
  if (inserted) {
    round.by_rank.resize(static_cast<size_t>(size_));
    round.first_arrival = now;
  }
  auto& slot = round.by_rank[static_cast<size_t>(rank)];
  if (slot) {
    return RoundOutcome{std::nullopt, id,
                        "tensor '" + request.name + "': rank " + std::to_string(rank) +
                            " submitted it twice in one round"};
  }
  slot = request;
  if (!slot->shape.empty()) slot->shape[0] = dim0;
  round.arrivals.push_back(now);
  if (++round.submitted < size_) return std::nullopt;
  Round done = std::move(round);
  rounds_.erase(it);
  return finish(id, std::move(done), rank, now);
}

std::optional<RoundOutcome> ReadinessTable::finish(uint32_t id, Round round, int last_rank,
                                                   Clock::time_point now) {
  std::vector<TensorRequest> all;
  std::vector<int32_t> missing;
  for (size_t r = 0; r < round.by_rank.size(); ++r) {
    if (round.by_rank[r]) {
      all.push_back(std::move(*round.by_rank[r]));
    } else {
      missing.push_back(static_cast<int32_t>(r));
    }
  }
  RoundOutcome out;
  out.id = id;
  out.error = describe_mismatch(all);
  if (!out.error.empty()) return out;

  ReadyTensor ready;
  ready.id = id;
  ready.first_arrival = round.first_arrival;
  ready.last_arrival = now;
  ready.last_rank = last_rank;
  ready.missing = std::move(missing);
  auto dim0_of = [](const TensorRequest& r) { return r.shape.empty() ? int64_t{1} : r.shape[0]; };
  if (all[0].kind == CollectiveKind::kAllgather) {
    for (const auto& r : all) {
      ready.dim0_per_rank.push_back(dim0_of(r));
      ready.wire_bytes += wire_bytes_of(r, dim0_of(r));
    }
  } else {
    ready.wire_bytes = wire_bytes_of(all[0], dim0_of(all[0]));
  }
  ready.request = std::move(all[0]);
  out.ready = std::move(ready);
  return out;
}

std::vector<int> ReadinessTable::present(uint32_t id) const {
  std::vector<int> ranks;
  auto it = rounds_.find(id);
  if (it == rounds_.end()) return ranks;
  for (size_t r = 0; r < it->second.by_rank.size(); ++r) {
    if (it->second.by_rank[r]) ranks.push_back(static_cast<int>(r));
  }
  return ranks;
}

std::optional<Clock::time_point> ReadinessTable::nth_arrival(uint32_t id, int n) const {
  auto it = rounds_.find(id);
  if (it == rounds_.end() || n < 1 || static_cast<size_t>(n) > it->second.arrivals.size()) {
    return std::nullopt;
  }
  return it->second.arrivals[static_cast<size_t>(n - 1)];
}

std::vector<uint32_t> ReadinessTable::open_ids() const {
  std::vector<uint32_t> ids;
  for (const auto& [id, round] : rounds_) ids.push_back(id);
  return ids;
}

std::optional<Clock::time_point> ReadinessTable::first_arrival(uint32_t id) const {
  auto it = rounds_.find(id);
  if (it == rounds_.end()) return std::nullopt;
  return it->second.first_arrival;
}

const TensorRequest* ReadinessTable::first_request(uint32_t id) const {
  auto it = rounds_.find(id);
  if (it == rounds_.end()) return nullptr;
  for (const auto& r : it->second.by_rank) {
    if (r) return &*r;
  }
  return nullptr;
}

std::optional<RoundOutcome> ReadinessTable::complete_partial(uint32_t id, Clock::time_point now) {
  auto it = rounds_.find(id);
  if (it == rounds_.end() || it->second.submitted == 0) return std::nullopt;
  Round done = std::move(it->second);
  rounds_.erase(it);
  int last = -1;
  for (size_t r = 0; r < done.by_rank.size(); ++r) {
    if (done.by_rank[r]) last = static_cast<int>(r);
  }
  return finish(id, std::move(done), last, now);
}

bool ReadinessTable::has_partial_allreduce() const {
  for (const auto& [id, round] : rounds_) {
    for (const auto& r : round.by_rank) {
      if (r && r->kind == CollectiveKind::kAllreduce) return true;
    }
  }
  return false;
}

std::vector<uint32_t> ReadinessTable::take_all_pending() {
  std::vector<uint32_t> ids;
  for (const auto& [id, round] : rounds_) ids.push_back(id);
  rounds_.clear();
  return ids;
}

}  // namespace quorum::coord
