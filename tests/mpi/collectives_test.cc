// Every op x dtype x size through the public API, broadcast from every root, allgather with a
// first dimension that differs per rank, and many tensors from several threads in a different
// order on each rank. Expected values follow the (seed, rank, index) rule; checks are exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <vector>
#include <thread>

#include "quorum/quorum.h"
#include "tests/common/test_data.h"
#include "tests/mpi/mpi_main.h"

namespace quorum {
namespace {

using ::quorum::testing::expected_allreduce;
using ::quorum::testing::kAllTypes;
using ::quorum::testing::make_input;

constexpr ReduceOp kAllOps[] = {ReduceOp::kSum, ReduceOp::kAverage, ReduceOp::kMin,
                                ReduceOp::kMax, ReduceOp::kProduct};
// 0 elements, 1, a prime, and (with QUORUM_FUSION_THRESHOLD=64K set by meson) one larger than
// the threshold for every dtype.
constexpr size_t kSizes[] = {0, 1, 1009, 40013};

Tensor view(std::vector<unsigned char>& buf, DataType t, size_t n) {
  return Tensor{buf.data(), t, {static_cast<int64_t>(n)}, Device::host()};
}

std::string label(DataType t, ReduceOp op, size_t n) {
  return std::string(dtype_name(t)) + "." + std::string(op_name(op)) + "." + std::to_string(n);
}

TEST(Allreduce, EveryOpDtypeAndSize) {
  uint64_t seed = 1;
  for (DataType t : kAllTypes) {
    for (ReduceOp op : kAllOps) {
      // Enqueue every size at once so small ones fuse and the large one goes alone.
      std::vector<std::vector<unsigned char>> in, out;
      std::vector<Handle> handles;
      for (size_t n : kSizes) {
        in.push_back(make_input(seed + n, rank(), n, t));
        out.push_back(std::vector<unsigned char>(in.back().size(), 0xAB));
      }
      for (size_t k = 0; k < std::size(kSizes); ++k) {
        handles.push_back(enqueue_allreduce("ar." + label(t, op, kSizes[k]),
                                            view(in[k], t, kSizes[k]), view(out[k], t, kSizes[k]),
                                            op));
      }
      for (size_t k = 0; k < std::size(kSizes); ++k) {
        Status s = wait(handles[k]);
        ASSERT_TRUE(s.is_ok()) << s.message();
        auto want = expected_allreduce(seed + kSizes[k], size(), kSizes[k], t, op);
        size_t bytes = kSizes[k] * dtype_size(t);
        ASSERT_EQ(0, std::memcmp(want.data(), out[k].data(), bytes)) << label(t, op, kSizes[k]);
        EXPECT_EQ(0xAB, out[k][bytes]) << "wrote past the end: " << label(t, op, kSizes[k]);
      }
    }
  }
}

TEST(Allreduce, InPlaceAndRepeatedRounds) {
  for (int round = 0; round < 20; ++round) {
    auto buf = make_input(100 + round, rank(), 333, DataType::kF32);
    Status s = wait(enqueue_allreduce("inplace", view(buf, DataType::kF32, 333),
                                      view(buf, DataType::kF32, 333), ReduceOp::kSum));
    ASSERT_TRUE(s.is_ok()) << s.message();
    auto want = expected_allreduce(100 + round, size(), 333, DataType::kF32, ReduceOp::kSum);
    ASSERT_EQ(0, std::memcmp(want.data(), buf.data(), 333 * 4)) << "round " << round;
  }
}

TEST(Allreduce, CallbackRunsOnceBeforeWaitReturns) {
  auto buf = make_input(7, rank(), 10, DataType::kI64);
  std::atomic<int> calls{0};
  Handle h = enqueue_allreduce("callback", view(buf, DataType::kI64, 10),
                               view(buf, DataType::kI64, 10), ReduceOp::kMax,
                               [&](const Status& s) {
                                 EXPECT_TRUE(s.is_ok());
                                 calls++;
                               });
  ASSERT_TRUE(wait(h).is_ok());
  EXPECT_TRUE(poll(h));
  EXPECT_EQ(1, calls.load());
  ASSERT_TRUE(wait(h).is_ok());  // a second wait sees the same result, no second callback
  EXPECT_EQ(1, calls.load());
}

TEST(Allreduce, ManyThreadsDifferentOrderPerRank) {
  constexpr int kThreads = 3, kPerThread = 24;
  std::vector<std::vector<unsigned char>> bufs(kThreads * kPerThread);
  std::vector<Handle> handles(bufs.size());
  std::vector<int> order(bufs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::mt19937 rng(static_cast<unsigned>(rank() * 7 + 1));
  std::shuffle(order.begin(), order.end(), rng);
  auto n_of = [](int i) { return static_cast<size_t>(1 + (i * 37) % 500); };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kPerThread; ++k) {
        int i = order[static_cast<size_t>(t * kPerThread + k)];
        bufs[i] = make_input(5000 + i, rank(), n_of(i), DataType::kF64);
        handles[i] = enqueue_allreduce("mt." + std::to_string(i), view(bufs[i], DataType::kF64, n_of(i)),
                                       view(bufs[i], DataType::kF64, n_of(i)), ReduceOp::kSum);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (size_t i = 0; i < bufs.size(); ++i) {
    Status s = wait(handles[i]);
    ASSERT_TRUE(s.is_ok()) << s.message();
    auto want = expected_allreduce(5000 + i, size(), n_of(static_cast<int>(i)), DataType::kF64,
                                   ReduceOp::kSum);
    ASSERT_EQ(0, std::memcmp(want.data(), bufs[i].data(), n_of(static_cast<int>(i)) * 8)) << i;
  }
  EXPECT_GT(stats().fused_tensors, 0u) << "72 small tensors should have shared fusion buffers";
}

// stats() counts host allreduce plans by algorithm: a fixed QUORUM_ALGO runs only that one
// (the mpi_collectives_<algo>_n* tests); auto runs some mix, every plan counted once.
TEST(Allreduce, StatsCountPlansByAlgorithm) {
  const Stats before = stats();
  std::vector<float> x(1000, 1.0f);
  const Tensor t{x.data(), DataType::kF32, {1000}, Device::host()};
  for (int k = 0; k < 5; ++k) {
    ASSERT_TRUE(wait(enqueue_allreduce("algo.count", t, t, ReduceOp::kMax)).is_ok());
  }
  const Stats after = stats();
  const uint64_t native = after.allreduce_native - before.allreduce_native;
  const uint64_t ring = after.allreduce_ring - before.allreduce_ring;
  const uint64_t tree = after.allreduce_tree - before.allreduce_tree;
  const uint64_t hier = after.allreduce_hierarchical - before.allreduce_hierarchical;
  if (size() == 1) {
    EXPECT_EQ(5u, native + ring + tree + hier) << "one rank still runs (and counts) each plan";
    return;
  }
  EXPECT_EQ(5u, native + ring + tree + hier);
  const char* algo = std::getenv("QUORUM_ALGO");
  const std::string fixed = algo ? algo : "auto";
  if (fixed == "native") {
    EXPECT_EQ(5u, native);
  } else if (fixed == "ring") {
    EXPECT_EQ(5u, ring);
  } else if (fixed == "tree") {
    EXPECT_EQ(5u, tree);
  } else if (fixed == "hierarchical") {
    EXPECT_EQ(5u, hier);
  }
  // Auto chooses hierarchical only for a job that spans hosts with two ranks on one of them.
  if (fixed == "auto" && (host_count() < 2 || host_count() == size())) {
    EXPECT_EQ(0u, hier);
  }
}

TEST(Broadcast, FromEveryRoot) {
  for (int root = 0; root < size(); ++root) {
    for (DataType t : {DataType::kF32, DataType::kU8, DataType::kBF16}) {
      size_t n = 12345;
      auto buf = make_input(900 + root, rank(), n, t);
      auto want = make_input(900 + root, root, n, t);
      Status s = wait(enqueue_broadcast("bc." + std::to_string(root) + std::string(dtype_name(t)),
                                        view(buf, t, n), root));
      ASSERT_TRUE(s.is_ok()) << s.message();
      ASSERT_EQ(0, std::memcmp(want.data(), buf.data(), n * dtype_size(t))) << "root " << root;
    }
  }
}

TEST(Allgather, FirstDimensionDiffersPerRank) {
  // Rank r contributes r rows (rank 0 none) of 3 columns.
  const int64_t cols = 3;
  for (DataType t : {DataType::kI32, DataType::kF16}) {
    const size_t rows = static_cast<size_t>(rank());
    auto in = make_input(77, rank(), rows * cols, t);
    std::vector<unsigned char> out;
    std::vector<int64_t> got_shape;
    Tensor input{in.data(), t, {static_cast<int64_t>(rows), cols}, Device::host()};
    Status s = wait(enqueue_allgather("ag." + std::string(dtype_name(t)), input,
                                      [&](const std::vector<int64_t>& shape) -> void* {
                                        got_shape = shape;
                                        out.resize(static_cast<size_t>(shape[0] * shape[1]) *
                                                       dtype_size(t) + 1);
                                        return out.data();
                                      }));
    ASSERT_TRUE(s.is_ok()) << s.message();
    int64_t total_rows = static_cast<int64_t>(size()) * (size() - 1) / 2;
    ASSERT_EQ((std::vector<int64_t>{total_rows, cols}), got_shape);
    size_t offset = 0;
    for (int r = 0; r < size(); ++r) {
      auto part = make_input(77, r, static_cast<size_t>(r) * cols, t);
      size_t bytes = static_cast<size_t>(r) * cols * dtype_size(t);
      ASSERT_EQ(0, std::memcmp(part.data(), out.data() + offset, bytes)) << "from rank " << r;
      offset += bytes;
    }
  }
}

// host_count()/host_index() agree with local_size() on every rank: the ranks that name a host
// are as many as each of them says share it. EXPECT_HOSTS (tests/emulated_hosts.sh) pins the
// count.
TEST(Topology, HostsAgreeWithLocalSizes) {
  const int hosts = host_count(), index = host_index();
  ASSERT_GE(hosts, 1);
  ASSERT_GE(index, 0);
  ASSERT_LT(index, hosts);
  if (const char* want = std::getenv("EXPECT_HOSTS")) {
    EXPECT_EQ(std::atoi(want), hosts);
  }
  // Every rank's (host index, local size), gathered through quorum itself.
  std::vector<int64_t> mine = {index, local_size()};
  std::vector<int64_t> all(2 * static_cast<size_t>(size()));
  const Tensor in{mine.data(), DataType::kI64, {1, 2}, Device::host()};
  ASSERT_TRUE(wait(enqueue_allgather("topology.hosts", in,
                                     [&](const std::vector<int64_t>&) -> void* {
                                       return all.data();
                                     }))
                  .is_ok());
  std::vector<int> members(static_cast<size_t>(hosts), 0);
  for (int r = 0; r < size(); ++r) ++members[static_cast<size_t>(all[2 * static_cast<size_t>(r)])];
  for (int r = 0; r < size(); ++r) {
    const auto h = static_cast<size_t>(all[2 * static_cast<size_t>(r)]);
    EXPECT_EQ(members[h], all[2 * static_cast<size_t>(r) + 1]) << "rank " << r << " on host " << h;
  }
  for (int h = 0; h < hosts; ++h) EXPECT_GT(members[static_cast<size_t>(h)], 0) << "host " << h;
}

}  // namespace
}  // namespace quorum

int main(int argc, char** argv) { return run_mpi_tests(argc, argv); }
