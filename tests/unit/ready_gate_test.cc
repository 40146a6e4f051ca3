// ReadyGate (held readiness until a fused group is complete here) and TensorQueue's wake
// threshold, as pure logic: no engine, no MPI.
#include "runtime/ready_gate.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "runtime/tensor_queue.h"

namespace quorum {
namespace {

constexpr int64_t kMs = 1'000'000;

PendingRequest req(const std::string& name) {
  PendingRequest r;
  r.desc.name = name;
  return r;
}

std::vector<PendingRequest> reqs(std::initializer_list<const char*> names) {
  std::vector<PendingRequest> out;
  for (const char* n : names) out.push_back(req(n));
  return out;
}

std::vector<std::string> names(const std::vector<PendingRequest>& rs) {
  std::vector<std::string> out;
  for (const PendingRequest& r : rs) out.push_back(r.desc.name);
  return out;
}

// Ids a..z -> 0..25; `announced` plays the engine's requests awaiting their plans.
struct World {
  std::set<uint32_t> announced;
  ReadyGate::IdOf id_of = [](const std::string& n) -> std::optional<uint32_t> {
    if (n.size() != 1 || n[0] < 'a' || n[0] > 'z') return std::nullopt;
    return static_cast<uint32_t>(n[0] - 'a');
  };
  ReadyGate::InFlight in_flight = [this](uint32_t id) { return announced.count(id) > 0; };
};

using Names = std::vector<std::string>;

TEST(ReadyGate, WithoutGroupsEverythingGoesAtOnce) {
  World w;
  ReadyGate g(kMs);
  EXPECT_EQ(Names({"a", "b"}), names(g.release(reqs({"a", "b"}), 0, w.id_of, w.in_flight)));
  EXPECT_TRUE(g.empty());
  EXPECT_EQ(0u, g.awaited());
}

TEST(ReadyGate, HoldsAGroupUntilItsLastMemberIsReadyHere) {
  World w;
  ReadyGate g(kMs);
  g.learn({0, 1, 2});  // a, b, c ran in one plan
  EXPECT_TRUE(g.release(reqs({"a"}), 0, w.id_of, w.in_flight).empty());
  EXPECT_EQ(2u, g.awaited());
  EXPECT_TRUE(g.release(reqs({"b"}), 10, w.id_of, w.in_flight).empty());
  EXPECT_EQ(1u, g.awaited());
  ASSERT_EQ(kMs, g.deadline_ns()) << "the oldest held request's clock";
  // d belongs to no group: it goes at once, the group stays held.
  EXPECT_EQ(Names({"d"}), names(g.release(reqs({"d"}), 20, w.id_of, w.in_flight)));
  EXPECT_EQ(Names({"a", "b", "c"}), names(g.release(reqs({"c"}), 30, w.id_of, w.in_flight)))
      << "in arrival order";
  EXPECT_TRUE(g.empty());
  EXPECT_FALSE(g.deadline_ns());
  EXPECT_EQ(0u, g.awaited());
}

TEST(ReadyGate, AMemberAlreadyAnnouncedCountsAsReady) {
  World w;
  ReadyGate g(kMs);
  g.learn({0, 1});
  w.announced.insert(1);  // b went out earlier (e.g. after a hold deadline) and awaits its plan
  EXPECT_EQ(Names({"a"}), names(g.release(reqs({"a"}), 0, w.id_of, w.in_flight)));
}

TEST(ReadyGate, TheDeadlineReleasesEverythingHeld) {
  World w;
  ReadyGate g(kMs);
  g.learn({0, 1, 2});
  g.learn({3, 4});
  EXPECT_TRUE(g.release(reqs({"a", "d"}), 0, w.id_of, w.in_flight).empty());
  EXPECT_EQ(1u, g.awaited()) << "the closest group: d's needs only e";
  EXPECT_TRUE(g.release({}, kMs - 1, w.id_of, w.in_flight).empty());
  EXPECT_EQ(Names({"a", "d"}), names(g.release({}, kMs, w.id_of, w.in_flight)))
      << "b, c and e did not come in time";
  EXPECT_TRUE(g.empty());
}

TEST(ReadyGate, GroupsFollowThePlans) {
  World w;
  ReadyGate g(kMs);
  g.learn({0, 1});
  g.learn({0});  // a now runs alone: it no longer waits for b
  EXPECT_EQ(Names({"a"}), names(g.release(reqs({"a"}), 0, w.id_of, w.in_flight)));
  EXPECT_TRUE(g.release(reqs({"b"}), 0, w.id_of, w.in_flight).empty())
      << "b still remembers the plan it shared with a";
  g.forget_groups();
  EXPECT_EQ(0u, g.groups());
  EXPECT_EQ(Names({"b"}), names(g.release({}, 1, w.id_of, w.in_flight)))
      << "without groups nothing is held";
}

TEST(ReadyGate, HoldsNothingWhenNotAllowedTo) {
  World w;
  ReadyGate g(kMs);
  g.learn({0, 1, 2});
  EXPECT_TRUE(g.release(reqs({"b"}), 0, w.id_of, w.in_flight).empty());
  EXPECT_EQ(Names({"b", "a"}),
            names(g.release(reqs({"a"}), 1, w.id_of, w.in_flight, /*may_hold=*/false)))
      << "bounded mode: nothing is held back";
  EXPECT_TRUE(g.empty());
  EXPECT_EQ(0u, g.awaited());
}

TEST(ReadyGate, ZeroHoldLimitNeverHolds) {
  World w;
  ReadyGate g(0);
  g.learn({0, 1, 2});
  EXPECT_EQ(Names({"a"}), names(g.release(reqs({"a"}), 0, w.id_of, w.in_flight)));
}

TEST(ReadyGate, UndescribedTensorsAndTakeAll) {
  World w;
  ReadyGate g(kMs);
  g.learn({0, 1});
  EXPECT_EQ(Names({"new.tensor"}),
            names(g.release(reqs({"a", "new.tensor"}), 0, w.id_of, w.in_flight)));
  EXPECT_EQ(Names({"a"}), names(g.take_all()));
  EXPECT_TRUE(g.empty());
}

TEST(TensorQueue, WakesOnEveryPushUnlessAskedToWaitForMore) {
  int wakes = 0;
  TensorQueue q([&] { ++wakes; });
  ASSERT_TRUE(q.push(req("a")).is_ok());
  ASSERT_TRUE(q.push(req("b")).is_ok());
  EXPECT_EQ(2, wakes);
  EXPECT_EQ(2u, q.drain().size());
  q.wake_after(3);
  ASSERT_TRUE(q.push(req("c")).is_ok());
  ASSERT_TRUE(q.push(req("d")).is_ok());
  EXPECT_EQ(2, wakes) << "two of three awaited pushes";
  ASSERT_TRUE(q.push(req("e")).is_ok());
  EXPECT_EQ(3, wakes);
  EXPECT_EQ(3u, q.drain().size());
  ASSERT_TRUE(q.push(req("f")).is_ok());
  EXPECT_EQ(4, wakes) << "drain() goes back to waking on every push";
  q.wake_after(1);
  EXPECT_EQ(5, wakes) << "already reached: wakes at once";
}

TEST(TensorQueue, ATensorTooLargeToFuseWakesAtOnce) {
  // A held group awaits three more members, but a large tensor (never fused, in no group) may
  // come between them: it must not wait for the group.
  int wakes = 0;
  TensorQueue q([&] { ++wakes; }, /*alone_bytes=*/1000);
  q.wake_after(3);
  PendingRequest small = req("small");
  small.input.dtype = DataType::kF32;
  small.elements = 250;  // 1000 bytes: may be fused
  ASSERT_TRUE(q.push(std::move(small)).is_ok());
  EXPECT_EQ(0, wakes);
  PendingRequest large = req("large");
  large.input.dtype = DataType::kF32;
  large.elements = 251;
  ASSERT_TRUE(q.push(std::move(large)).is_ok());
  EXPECT_EQ(1, wakes);
}

}  // namespace
}  // namespace quorum
