// The coordinator's id cache (ServiceOptions::cache_capacity) driven by fake ranks that speak
// the protocol the way engines do: learn ids from assignments, refer to known names by id,
// forget evicted ids after running the batch's plans and acknowledge with evictions_seen.
#include <gtest/gtest.h>

#include <map>
#include <unordered_map>
#include <unordered_set>

#include "coordinator/coordinator_service.h"

namespace quorum::coord {
namespace {

const Clock::time_point kT0 = Clock::time_point{} + std::chrono::seconds(1000);

class FakeRank {
 public:
  explicit FakeRank(int rank) : rank_(rank) {}

  // A readiness message for `names` (4-element f32 sum allreduces).
  Ready ready(const std::vector<std::string>& names) {
    Ready r;
    for (const std::string& n : names) {
      auto it = ids_.find(n);
      if (it != ids_.end() && described_.count(n)) {  // as engines: only what it described
        r.entries.push_back({std::nullopt, it->second, 4});
      } else {
        TensorRequest t;
        t.name = n;
        t.shape = {4};
        r.entries.push_back({t, 0, 4});
        described_.insert(n);
      }
    }
    r.evictions_seen = seen_;
    return r;
  }

  // Takes every batch in `out`; counts the tensors each plan ran, by name.
  void receive(const std::vector<Outgoing>& out) {
    for (const Outgoing& o : out) {
      if (o.rank != kAllRanks && o.rank != rank_) continue;
      const auto* b = std::get_if<PlanBatch>(&o.message);
      if (!b) continue;
      for (const IdAssignment& a : b->assignments) {
        names_[a.id] = a.name;
        ids_[a.name] = a.id;
      }
      for (const Plan& p : b->plans) {
        ASSERT_NE(p.kind, PlanKind::kError) << p.message;
        for (uint32_t id : p.ids) {
          ASSERT_TRUE(names_.count(id)) << "rank " << rank_ << ": plan names unknown id " << id;
          ran_[names_[id]]++;
        }
      }
      for (uint32_t id : b->evicted) {
        auto n = names_.find(id);
        ASSERT_NE(n, names_.end()) << "evicted an id this rank never learned: " << id;
        if (ids_[n->second] == id) ids_.erase(n->second);
        described_.erase(n->second);
        names_.erase(n);
      }
      seen_ += b->evicted.size();
    }
  }

  const std::map<std::string, int>& ran() const { return ran_; }
  size_t known_ids() const { return names_.size(); }
  uint32_t max_id() const {
    uint32_t m = 0;
    for (const auto& [id, n] : names_) m = std::max(m, id);
    return m;
  }

 private:
  int rank_;
  std::unordered_map<std::string, uint32_t> ids_;
  std::unordered_map<uint32_t, std::string> names_;
  std::unordered_set<std::string> described_;
  uint64_t seen_ = 0;
  std::map<std::string, int> ran_;
};

ServiceOptions options(int size, size_t capacity) {
  ServiceOptions o;
  o.size = size;
  o.cycle_time = Clock::duration::zero();
  o.cache_capacity = capacity;
  return o;
}

// Both ranks submit `names`; every batch reaches both.
void step(CoordinatorService& svc, std::vector<FakeRank>& ranks,
          const std::vector<std::string>& names) {
  for (size_t r = 0; r < ranks.size(); ++r) {
    auto out = svc.on_ready(static_cast<int>(r), ranks[r].ready(names), kT0);
    for (FakeRank& f : ranks) f.receive(out);
  }
}

TEST(IdCache, FreshNamesEveryStepStayWithinCapacity) {
  CoordinatorService svc(options(2, 16));
  std::vector<FakeRank> ranks{FakeRank(0), FakeRank(1)};
  const int steps = 300, per_step = 5;
  for (int s = 0; s < steps; ++s) {
    std::vector<std::string> names;
    for (int i = 0; i < per_step; ++i) {
      std::string n = "s";  // appended, not operator+: GCC 12's -Wrestrict false positive
      names.push_back(n.append(std::to_string(s)).append(".t").append(std::to_string(i)));
    }
    step(svc, ranks, names);
    EXPECT_LE(svc.cached_names(), 16u + per_step) << "step " << s;
  }
  // An empty readiness message is how an idle engine acknowledges.
  for (size_t r = 0; r < ranks.size(); ++r) {
    for (FakeRank& f : ranks) f.receive(svc.on_ready(static_cast<int>(r), ranks[r].ready({}), kT0));
  }
  EXPECT_EQ(svc.retiring_ids(), 0u);
  EXPECT_GT(svc.evictions(), static_cast<uint64_t>(steps * per_step - 32));
  for (const FakeRank& f : ranks) {
    EXPECT_EQ(f.ran().size(), static_cast<size_t>(steps * per_step));
    for (const auto& [name, n] : f.ran()) EXPECT_EQ(n, 1) << name;
    EXPECT_LE(f.known_ids(), 16u + per_step);
    EXPECT_LT(f.max_id(), 64u) << "evicted ids are reused";
  }
}

TEST(IdCache, ReusedNamesBeyondCapacityRunEveryStep) {
  CoordinatorService svc(options(2, 16));
  std::vector<FakeRank> ranks{FakeRank(0), FakeRank(1)};
  std::vector<std::string> names;
  for (int i = 0; i < 40; ++i) names.push_back("layer" + std::to_string(i));
  for (int s = 0; s < 20; ++s) step(svc, ranks, names);
  for (const FakeRank& f : ranks) {
    ASSERT_EQ(f.ran().size(), 40u);
    for (const auto& [name, n] : f.ran()) EXPECT_EQ(n, 20) << name;
  }
}

TEST(IdCache, IdSentBeforeTheEvictionArrivedIsStillUnderstood) {
  CoordinatorService svc(options(2, 16));
  FakeRank r0(0), r1(1);
  std::vector<Outgoing> held_back;  // batches rank 1 has not read yet
  auto both = [&](const std::vector<Outgoing>& out, bool deliver_to_1) {
    r0.receive(out);
    if (deliver_to_1) {
      r1.receive(out);
    } else {
      held_back.insert(held_back.end(), out.begin(), out.end());
    }
  };
  // "old" gets an id on both ranks; then enough fresh names to evict it.
  both(svc.on_ready(0, r0.ready({"pilot"}), kT0), true);
  both(svc.on_ready(1, r1.ready({"pilot"}), kT0), true);
  both(svc.on_ready(0, r0.ready({"old"}), kT0), true);
  both(svc.on_ready(1, r1.ready({"old"}), kT0), true);
  for (int i = 0; i < 30; ++i) {
    std::string n = "fresh" + std::to_string(i);
    both(svc.on_ready(0, r0.ready({n}), kT0), i < 10);
    both(svc.on_ready(1, r1.ready({n}), kT0), i < 10);
  }
  ASSERT_GT(svc.retiring_ids(), 0u);
  // Rank 0 has forgotten "old" and describes it in full; rank 1 has not seen the eviction yet
  // and still refers to it by its old id.
  Ready fresh = r0.ready({"old"});
  ASSERT_TRUE(fresh.entries[0].full.has_value());
  both(svc.on_ready(0, fresh, kT0), false);
  Ready stale = r1.ready({"old"});
  ASSERT_FALSE(stale.entries[0].full.has_value());
  both(svc.on_ready(1, stale, kT0), false);
  r1.receive(held_back);
  EXPECT_EQ(r0.ran().at("old"), 2);
  EXPECT_EQ(r1.ran().at("old"), 2);
  // Once rank 1 acknowledges, nothing is left retiring.
  both(svc.on_ready(1, r1.ready({}), kT0), true);
  both(svc.on_ready(0, r0.ready({}), kT0), true);
  EXPECT_EQ(svc.retiring_ids(), 0u);
}

TEST(IdCache, DepartedRankDoesNotHoldEvictionsBack) {
  CoordinatorService svc(options(2, 16));
  std::vector<FakeRank> ranks{FakeRank(0), FakeRank(1)};
  for (int i = 0; i < 20; ++i) step(svc, ranks, {std::string("a").append(std::to_string(i))});
  for (FakeRank& f : ranks) f.receive(svc.on_goodbye(1, kT0));
  for (int i = 0; i < 20; ++i) {
    ranks[0].receive(svc.on_ready(0, ranks[0].ready({}), kT0));
  }
  EXPECT_EQ(svc.retiring_ids(), 0u);
}

}  // namespace
}  // namespace quorum::coord
