// ring_allreduce, tree_allreduce and hierarchical_allreduce on MPI point-to-point, under
// mpiexec -n 1..4, without the engine. The hierarchical one runs over the real hosts
// (MPI_COMM_TYPE_SHARED: one host here, two or more under tests/emulated_hosts.sh) and over
// pretend hosts grouped from one machine's ranks: pairs (2 x 2 at 4 ranks) and uneven (1 and
// the rest: 1 / 3 at 4 ranks), so the algorithm's both paths run in the plain MPI suite: every dtype (f16/bf16 as compressed plans send them) x op (Average included) x size (empty, fewer elements than ranks, not
// divisible by the rank count, primes, many segments), exact against the (seed, rank, index) rule, and bitwise
// identical on every rank, including for signed zeros and NaN payloads, where the operand order
// of min/max/sum shows. Own main(): MPI only, no quorum::init.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cctype>
#include <cmath>
#include <functional>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/hierarchical_allreduce.h"
#include "ops/p2p_allreduce.h"
#include "tests/common/agree.h"
#include "tests/common/test_data.h"

namespace quorum {
namespace {

using ::quorum::testing::expect_identical_on_all_ranks;
using ::quorum::testing::expected_allreduce;
using ::quorum::testing::make_input;

MPI_Comm g_comm = MPI_COMM_NULL;  // a duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN

// Every dtype: f16/bf16 are the wire dtypes of compressed plans (QUORUM_COMPRESSION); the test
// values and their partial results up to three ranks deep are exact in them, so the one rounding
// a 4-rank product may take is the expected one too.
using ::quorum::testing::kAllTypes;
constexpr ReduceOp kOps[] = {ReduceOp::kSum, ReduceOp::kAverage, ReduceOp::kMin, ReduceOp::kMax,
                             ReduceOp::kProduct};
// Empty, fewer than the ranks, not divisible by 2, 3 or 4, primes, and 4099: with 256-byte
// segments every rank's block spans several segments for every dtype.
constexpr size_t kSizes[] = {0, 1, 2, 3, 4, 5, 7, 8, 13, 1009, 4099};
constexpr unsigned char kGuard = 0xAB;

int comm_rank(MPI_Comm c) {
  int r = 0;
  MPI_Comm_rank(c, &r);
  return r;
}

int comm_size(MPI_Comm c) {
  int s = 1;
  MPI_Comm_size(c, &s);
  return s;
}

enum class Algo {
  kRing,
  kRingSmallSegments,
  kTree,
  kTreeSmallSegments,
  kHierarchicalShared,  // hosts from MPI_COMM_TYPE_SHARED
  kHierarchicalPairs,   // pretend hosts of two consecutive ranks
  kHierarchicalUneven,  // pretend hosts {0} and {1 .. size-1}
  kHierarchicalPairsSmallSegments,  // and 1000-byte chunks: a long pipeline at small sizes
};

const char* algo_name(Algo a) {
  switch (a) {
    case Algo::kRing:
      return "ring";
    case Algo::kRingSmallSegments:
      return "ring/256B";
    case Algo::kTree:
      return "tree";
    case Algo::kTreeSmallSegments:
      return "tree/256B";
    case Algo::kHierarchicalShared:
      return "hierarchical/shared";
    case Algo::kHierarchicalPairs:
      return "hierarchical/pairs";
    case Algo::kHierarchicalUneven:
      return "hierarchical/uneven";
    case Algo::kHierarchicalPairsSmallSegments:
      return "hierarchical/pairs/256B/1000B-chunks";
  }
  return "?";
}

// One Hierarchy per communicator and grouping, built on first use (creating one is
// collective, and every rank reaches the same calls in the same order).
std::map<std::pair<MPI_Comm, Algo>, std::unique_ptr<ops::Hierarchy>> g_hierarchies;

const ops::Hierarchy& hierarchy(Algo a, MPI_Comm comm) {
  if (a == Algo::kHierarchicalPairsSmallSegments) a = Algo::kHierarchicalPairs;
  std::unique_ptr<ops::Hierarchy>& h = g_hierarchies[{comm, a}];
  if (h) return *h;
  Status s;
  if (a == Algo::kHierarchicalShared) {
    s = ops::Hierarchy::from_shared_memory(comm, &h);
  } else {
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    const int color = a == Algo::kHierarchicalPairs ? rank / 2 : (rank == 0 ? 0 : 1);
    MPI_Comm host = MPI_COMM_NULL;
    MPI_Comm_split(comm, color, rank, &host);
    s = ops::Hierarchy::create(comm, host, &h);
    MPI_Comm_free(&host);
  }
  if (!s.is_ok()) {
    std::fprintf(stderr, "creating a hierarchy failed: %s\n", s.message().c_str());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return *h;
}

// Before `comm` is freed (its handle may be reused).
void forget_hierarchies(MPI_Comm comm) {
  for (auto it = g_hierarchies.begin(); it != g_hierarchies.end();) {
    it = it->first.first == comm ? g_hierarchies.erase(it) : std::next(it);
  }
}

bool is_tree(Algo a) { return a == Algo::kTree || a == Algo::kTreeSmallSegments; }

void PrintTo(Algo a, std::ostream* os) { *os << algo_name(a); }

// `segment` 0: the variant's own segment size.
Status run_algo(Algo a, MPI_Comm comm, void* buf, size_t n, DataType t, ReduceOp op,
                size_t segment = 0) {
  auto seg = [segment](size_t own) { return segment ? segment : own; };
  const std::function<void()> progress;
  switch (a) {
    case Algo::kRing:
      return ops::ring_allreduce(comm, buf, n, t, op, progress, seg(ops::kDefaultSegmentBytes));
    case Algo::kRingSmallSegments:
      return ops::ring_allreduce(comm, buf, n, t, op, progress, seg(256));
    case Algo::kTree:
      return ops::tree_allreduce(comm, buf, n, t, op, progress, seg(ops::kDefaultSegmentBytes));
    case Algo::kTreeSmallSegments:
      return ops::tree_allreduce(comm, buf, n, t, op, progress, seg(256));
    case Algo::kHierarchicalShared:
    case Algo::kHierarchicalPairs:
    case Algo::kHierarchicalUneven:
      return ops::hierarchical_allreduce(hierarchy(a, comm), buf, n, t, op, progress, nullptr,
                                         seg(ops::kDefaultSegmentBytes));
    case Algo::kHierarchicalPairsSmallSegments:
      return ops::hierarchical_allreduce(hierarchy(a, comm), buf, n, t, op, progress, nullptr,
                                         seg(256), 1000);
  }
  return Status(StatusCode::kInternal, "unknown algorithm");
}

std::string label(Algo a, DataType t, ReduceOp op, size_t n, int ranks) {
  return std::string(algo_name(a)) + " " + std::string(dtype_name(t)) + "." +
         std::string(op_name(op)) + "." + std::to_string(n) + " on " + std::to_string(ranks);
}

// Runs one allreduce on `comm` and checks it exactly. Uses EXPECT, not ASSERT, so every rank
// keeps issuing the same sequence of collectives even after a mismatch.
void check_one(Algo a, MPI_Comm comm, DataType t, ReduceOp op, size_t n, uint64_t seed) {
  const int rank = comm_rank(comm), size = comm_size(comm);
  const std::string what = label(a, t, op, n, size);
  auto buf = make_input(seed, rank, n, t);
  const size_t bytes = n * dtype_size(t);
  buf[bytes] = kGuard;
  Status s = run_algo(a, comm, buf.data(), n, t, op);
  EXPECT_TRUE(s.is_ok()) << what << ": " << s.message();
  auto want = expected_allreduce(seed, size, n, t, op);
  EXPECT_EQ(0, std::memcmp(want.data(), buf.data(), bytes)) << what;
  EXPECT_EQ(kGuard, buf[bytes]) << "wrote past the end: " << what;
  expect_identical_on_all_ranks(comm, buf.data(), bytes, what);
}

class Algorithms : public ::testing::TestWithParam<Algo> {};

TEST_P(Algorithms, EveryDtypeOpAndSize) {
  uint64_t seed = 11;
  for (DataType t : kAllTypes) {
    for (ReduceOp op : kOps) {
      for (size_t n : kSizes) check_one(GetParam(), g_comm, t, op, n, seed++);
    }
  }
}

TEST_P(Algorithms, EverySubCommunicatorSize) {
  // Rank counts 1..size in one run (so -n 4 also covers 3, a non-power of two), on a
  // communicator other than the one the previous test used.
  const int rank = comm_rank(g_comm), size = comm_size(g_comm);
  for (int k = 1; k <= size; ++k) {
    MPI_Comm sub = MPI_COMM_NULL;
    ASSERT_EQ(MPI_SUCCESS, MPI_Comm_split(g_comm, rank < k ? 0 : MPI_UNDEFINED, rank, &sub));
    if (sub == MPI_COMM_NULL) continue;
    MPI_Comm_set_errhandler(sub, MPI_ERRORS_RETURN);
    for (size_t n : {size_t{0}, size_t{1}, size_t{5}, size_t{1009}}) {
      check_one(GetParam(), sub, DataType::kF32, ReduceOp::kSum, n, 500 + n);
      check_one(GetParam(), sub, DataType::kI64, ReduceOp::kProduct, n, 600 + n);
    }
    forget_hierarchies(sub);
    MPI_Comm_free(&sub);
  }
}

TEST_P(Algorithms, LargeMessageManySegments) {
  // 1 MiB of f32 in 4 KiB segments: dozens of segments per step, scratch two segments.
  constexpr size_t n = (size_t{1} << 18) + 3;
  const int rank = comm_rank(g_comm), size = comm_size(g_comm);
  auto buf = make_input(77, rank, n, DataType::kF32);
  buf[n * 4] = kGuard;
  Status s = run_algo(GetParam(), g_comm, buf.data(), n, DataType::kF32, ReduceOp::kSum, 4096);
  EXPECT_TRUE(s.is_ok()) << s.message();
  auto want = expected_allreduce(77, size, n, DataType::kF32, ReduceOp::kSum);
  EXPECT_EQ(0, std::memcmp(want.data(), buf.data(), n * 4));
  EXPECT_EQ(kGuard, buf[n * 4]);
  expect_identical_on_all_ranks(g_comm, buf.data(), n * 4, "large");
}

template <typename F>
void fill_awkward(std::vector<F>& v, int rank) {
  // Signed zeros and NaNs with rank-specific payloads: min(+0, -0), max(NaN, x) and NaN + NaN
  // depend on operand order, so identical bits need every rank to combine the same way.
  for (size_t i = 0; i < v.size(); ++i) {
    switch ((i + static_cast<size_t>(rank)) % 4) {
      case 0:
        v[i] = F(0);
        break;
      case 1:
        v[i] = -F(0);
        break;
      case 2: {
        using Bits = std::conditional_t<sizeof(F) == 4, uint32_t, uint64_t>;
        F nan = std::numeric_limits<F>::quiet_NaN();
        Bits b;
        std::memcpy(&b, &nan, sizeof b);
        b |= static_cast<Bits>(rank + 1 + i % 7);  // payload in the low mantissa bits
        std::memcpy(&v[i], &b, sizeof b);
        break;
      }
      default:
        v[i] = static_cast<F>(static_cast<int>(i % 5) - 2);
        break;
    }
  }
}

TEST_P(Algorithms, SignedZerosAndNanPayloadsAgreeBitwise) {
  const int rank = comm_rank(g_comm);
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAverage, ReduceOp::kMin, ReduceOp::kMax,
                      ReduceOp::kProduct}) {
    for (size_t n : {size_t{3}, size_t{257}}) {
      std::vector<float> f(n);
      fill_awkward(f, rank);
      Status s = run_algo(GetParam(), g_comm, f.data(), n, DataType::kF32, op);
      EXPECT_TRUE(s.is_ok()) << s.message();
      expect_identical_on_all_ranks(g_comm, f.data(), n * 4, "f32 " + std::string(op_name(op)));
      std::vector<double> d(n);
      fill_awkward(d, rank);
      s = run_algo(GetParam(), g_comm, d.data(), n, DataType::kF64, op);
      EXPECT_TRUE(s.is_ok()) << s.message();
      expect_identical_on_all_ranks(g_comm, d.data(), n * 8, "f64 " + std::string(op_name(op)));
    }
  }
}

TEST_P(Algorithms, BackToBackWithoutBarriers) {
  // Alternating algorithms with no synchronisation between calls: a rank that runs ahead must
  // not have its messages matched by a peer's receive of the previous call.
  const int rank = comm_rank(g_comm), size = comm_size(g_comm);
  for (int round = 0; round < 30; ++round) {
    Algo a = round % 2 == 0 ? GetParam() : (is_tree(GetParam()) ? Algo::kRing : Algo::kTree);
    size_t n = 1 + static_cast<size_t>(round) * 37;
    auto buf = make_input(900 + round, rank, n, DataType::kI32);
    Status s = run_algo(a, g_comm, buf.data(), n, DataType::kI32, ReduceOp::kSum);
    EXPECT_TRUE(s.is_ok()) << s.message();
    auto want = expected_allreduce(900 + round, size, n, DataType::kI32, ReduceOp::kSum);
    EXPECT_EQ(0, std::memcmp(want.data(), buf.data(), n * 4)) << "round " << round;
  }
}

TEST_P(Algorithms, RejectsNullBufferWithoutCommunicating) {
  Status s = run_algo(GetParam(), g_comm, nullptr, 4, DataType::kF32, ReduceOp::kSum);
  EXPECT_EQ(StatusCode::kInvalidArgument, s.code());
}

INSTANTIATE_TEST_SUITE_P(P2p, Algorithms,
                         ::testing::Values(Algo::kRing, Algo::kRingSmallSegments, Algo::kTree,
                                           Algo::kTreeSmallSegments, Algo::kHierarchicalShared,
                                           Algo::kHierarchicalPairs, Algo::kHierarchicalUneven,
                                           Algo::kHierarchicalPairsSmallSegments),
                         [](const auto& info) {
                           std::string name;
                           for (char c : std::string(algo_name(info.param))) {
                             if (std::isalnum(static_cast<unsigned char>(c))) name += c;
                           }
                           return name;
                         });

}  // namespace
}  // namespace quorum

int main(int argc, char** argv) {
  int provided = 0;
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
    std::fprintf(stderr, "MPI_Init_thread failed\n");
    return 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  MPI_Comm_dup(MPI_COMM_WORLD, &quorum::g_comm);
  MPI_Comm_set_errhandler(quorum::g_comm, MPI_ERRORS_RETURN);
  const int rank = quorum::comm_rank(quorum::g_comm);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    // Failures stay visible from every rank; progress lines come from rank 0 only.
    delete listeners.Release(listeners.default_result_printer());
    class FailurePrinter : public ::testing::EmptyTestEventListener {
     public:
      explicit FailurePrinter(int rank) : rank_(rank) {}
      void OnTestPartResult(const ::testing::TestPartResult& r) override {
        if (r.failed()) {
          std::fprintf(stderr, "[rank %d] %s:%d: %s\n", rank_, r.file_name(), r.line_number(),
                       r.summary());
        }
      }

     private:
      int rank_;
    };
    listeners.Append(new FailurePrinter(rank));
  }
  int rc = RUN_ALL_TESTS();
  // Every rank exits non-zero if any rank failed, so mpiexec's status does not depend on which
  // process it reports.
  int worst = 0;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, quorum::g_comm);
  if (rank == 0) {
    std::printf("mpi tests: %s on all %d ranks\n", worst == 0 ? "passed" : "FAILED",
                quorum::comm_size(quorum::g_comm));
  }
  quorum::g_hierarchies.clear();
  MPI_Comm_free(&quorum::g_comm);
  std::fprintf(stderr, "mpi_algorithms: rank %d finalizing MPI\n", rank);
  MPI_Finalize();
  return worst;
}
