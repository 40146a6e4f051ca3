// Every error path of the public API: requests wrong on their face fail at once; ranks that
// disagree about a tensor all get an error naming it, the values and the ranks; a duplicate
// in-flight name is refused; and the name is usable again afterwards. Nothing hangs.
#include <gtest/gtest.h>

#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <limits>

#include "ops/nccl/device_backend.h"
#include "quorum/quorum.h"
#include "tests/common/test_data.h"
#include "tests/mpi/mpi_main.h"

namespace quorum {
namespace {

std::vector<float> g_data(64, 1.0f);

Tensor f32(std::vector<int64_t> shape, void* data = g_data.data()) {
  return Tensor{data, DataType::kF32, std::move(shape), Device::host()};
}

// An immediate error: the handle is complete on return, with `code` and `fragment`.
void expect_immediate(const Handle& h, StatusCode code, const std::string& fragment) {
  ASSERT_TRUE(poll(h)) << "an invalid request must fail at once";
  Status s = wait(h);
  EXPECT_EQ(code, s.code()) << s.message();
  EXPECT_NE(std::string::npos, s.message().find(fragment)) << s.message();
}

TEST(Immediate, BadRequestsFailAtOnceWithTheirName) {
  expect_immediate(enqueue_allreduce("null", f32({4}, nullptr), f32({4})),
                   StatusCode::kInvalidArgument, "tensor 'null': input data pointer is null");
  expect_immediate(enqueue_allreduce("neg", f32({4, -2}), f32({4})), StatusCode::kInvalidArgument,
                   "tensor 'neg': input dimension 1 is negative (-2)");
  int64_t big = std::numeric_limits<int64_t>::max() / 2;
  expect_immediate(enqueue_allreduce("huge", f32({big, big}), f32({4})),
                   StatusCode::kInvalidArgument, "overflows");
  Tensor weird = f32({4});
  weird.dtype = static_cast<DataType>(42);
  expect_immediate(enqueue_allreduce("dtype", weird, weird), StatusCode::kInvalidArgument,
                   "unsupported dtype value 42");
  expect_immediate(enqueue_allreduce("sizes", f32({4}), f32({5})), StatusCode::kInvalidArgument,
                   "output has 5 elements but input has 4");
  Tensor as_i32 = f32({4});
  as_i32.dtype = DataType::kI32;
  expect_immediate(enqueue_allreduce("types", f32({4}), as_i32), StatusCode::kInvalidArgument,
                   "output dtype i32 differs from input dtype f32");
  expect_immediate(enqueue_allreduce("op", f32({4}), f32({4}), static_cast<ReduceOp>(9)),
                   StatusCode::kInvalidArgument, "unsupported reduce op");
  expect_immediate(enqueue_broadcast("root", f32({4}), size()), StatusCode::kInvalidArgument,
                   "broadcast root " + std::to_string(size()) + " is not a rank");
  expect_immediate(enqueue_allreduce("", f32({4}), f32({4})), StatusCode::kInvalidArgument,
                   "name is empty");
  Tensor gpu = f32({4});
  gpu.device = Device::cuda(0);
  // A build with the NCCL backend accepts CUDA tensors (tests/gpu covers them, and
  // gpu_no_device what happens without a GPU); one without refuses them at once.
  if (!ops::device_backend_built()) {
    expect_immediate(enqueue_allreduce("gpu", gpu, gpu), StatusCode::kUnimplemented, "NCCL");
  }
  expect_immediate(enqueue_allgather("scalar", f32({}), [](auto&) { return nullptr; }),
                   StatusCode::kInvalidArgument, "at least one dimension");
  expect_immediate(enqueue_allgather("noalloc", f32({2}), nullptr), StatusCode::kInvalidArgument,
                   "output allocator");
}

TEST(Immediate, DuplicateInFlightName) {
  // The allocator runs mid-operation, so holding it keeps "dup" in flight deterministically.
  std::promise<void> release;
  auto released = release.get_future().share();
  std::vector<float> out(64 * static_cast<size_t>(size()));
  Handle first = enqueue_allgather("dup", f32({64}), [&](const std::vector<int64_t>&) -> void* {
    released.wait();
    return out.data();
  });
  Handle second = enqueue_allreduce("dup", f32({4}), f32({4}));
  expect_immediate(second, StatusCode::kFailedPrecondition, "already in flight");
  release.set_value();
  ASSERT_TRUE(wait(first).is_ok());
  // Once complete, the name is free again.
  std::vector<float> x(4, 2.0f);
  EXPECT_TRUE(wait(enqueue_allreduce("dup", f32({4}, x.data()), f32({4}, x.data()))).is_ok());
}

// Rank 1 (if any) differs from the others in one field; every rank must get the same error.
void expect_mismatch(const Handle& h, const std::string& expected_if_multi) {
  Status s = wait(h);
  if (size() == 1) {
    EXPECT_TRUE(s.is_ok()) << s.message();
    return;
  }
  EXPECT_EQ(StatusCode::kMismatch, s.code()) << s.message();
  EXPECT_EQ(expected_if_multi, s.message());
}

std::string others_than_1() {
  std::string s = size() > 2 ? "ranks 0" : "rank 0";
  for (int r = 2; r < size(); ++r) {
    s += ',';
    s += std::to_string(r);
  }
  return s;
}

TEST(Mismatch, ShapeDtypeOpRootAndKind) {
  std::vector<float> a(64, 1.0f);
  bool odd = rank() == 1;
  expect_mismatch(enqueue_allreduce("mm.shape", f32({odd ? 6 : 5}, a.data()), f32({odd ? 6 : 5}, a.data())),
                  "tensor 'mm.shape': shape [5] on " + others_than_1() + " but [6] on rank 1");

  Tensor t = f32({4}, a.data());
  if (odd) t.dtype = DataType::kI32;
  expect_mismatch(enqueue_allreduce("mm.dtype", t, t),
                  "tensor 'mm.dtype': dtype f32 on " + others_than_1() + " but i32 on rank 1");

  expect_mismatch(enqueue_allreduce("mm.op", f32({4}, a.data()), f32({4}, a.data()),
                                    odd ? ReduceOp::kMax : ReduceOp::kSum),
                  "tensor 'mm.op': reduce op sum on " + others_than_1() + " but max on rank 1");

  expect_mismatch(enqueue_broadcast("mm.root", f32({4}, a.data()), odd ? 1 : 0),
                  "tensor 'mm.root': root 0 on " + others_than_1() + " but 1 on rank 1");

  Handle h = odd ? enqueue_broadcast("mm.kind", f32({4}, a.data()), 0)
                 : enqueue_allreduce("mm.kind", f32({4}, a.data()), f32({4}, a.data()));
  expect_mismatch(h, "tensor 'mm.kind': operation allreduce on " + others_than_1() +
                         " but broadcast on rank 1");

  std::vector<float> out(1024);
  Tensor g{a.data(), DataType::kF32, {2, odd ? 3 : 4}, Device::host()};
  expect_mismatch(enqueue_allgather("mm.gather", g, [&](auto&) -> void* { return out.data(); }),
                  "tensor 'mm.gather': shape after the first dimension [4] on " + others_than_1() +
                      " but [3] on rank 1");
}

TEST(Mismatch, NameWorksAgainAfterAnError) {
  std::vector<float> a(8, 1.0f);
  int n = rank() == 1 ? 3 : 2;
  Status s = wait(enqueue_allreduce("again", f32({n}, a.data()), f32({n}, a.data()), ReduceOp::kSum));
  EXPECT_EQ(size() == 1, s.is_ok()) << s.message();
  std::vector<float> b(2, 1.0f);
  s = wait(enqueue_allreduce("again", f32({2}, b.data()), f32({2}, b.data()), ReduceOp::kSum));
  ASSERT_TRUE(s.is_ok()) << s.message();
  EXPECT_EQ(static_cast<float>(size()), b[0]);
}

TEST(Allgather, NullFromAllocatorFailsOnlyThatRankAndNothingHangs) {
  std::vector<float> in(6, 1.0f), out(6 * static_cast<size_t>(size()));
  bool refuse = rank() == size() - 1;
  Status s = wait(enqueue_allgather("ag.null", f32({2, 3}, in.data()),
                                    [&](auto&) -> void* { return refuse ? nullptr : out.data(); }));
  if (refuse) {
    EXPECT_EQ(StatusCode::kInvalidArgument, s.code());
    EXPECT_NE(std::string::npos, s.message().find("tensor 'ag.null': the output allocator")) << s.message();
  } else {
    EXPECT_TRUE(s.is_ok()) << s.message();
  }
}

// Run with QUORUM_STALL_WARNING_SEC=1 QUORUM_STALL_ABORT_SEC=2 (tests/meson.build).
TEST(Stall, AbortFailsTheTensorOnEveryRankAndItRecovers) {
  if (size() == 1) GTEST_SKIP() << "a stall needs a rank that does not submit";
  if (!std::getenv("QUORUM_STALL_ABORT_SEC")) GTEST_SKIP() << "needs QUORUM_STALL_ABORT_SEC";
  std::vector<float> x(4, 1.0f);
  Tensor t{x.data(), DataType::kF32, {4}, Device::host()};
  auto start = std::chrono::steady_clock::now();
  Status s;
  if (rank() == 0) {
    s = wait(enqueue_allreduce("stuck", t, t, ReduceOp::kSum));  // nobody else joins
  }
  MPI_Barrier(MPI_COMM_WORLD);  // the others hold back until rank 0's handle has failed
  if (rank() != 0) s = wait(enqueue_allreduce("stuck", t, t, ReduceOp::kSum));
  EXPECT_EQ(StatusCode::kAborted, s.code()) << s.message();
  EXPECT_NE(std::string::npos, s.message().find("tensor 'stuck' was submitted by rank(s) 0 but not by rank(s) 1"))
      << s.message();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(secs, 10.0);
  // Everyone together: the name works again.
  std::fill(x.begin(), x.end(), 1.0f);
  s = wait(enqueue_allreduce("stuck", t, t, ReduceOp::kSum));
  ASSERT_TRUE(s.is_ok()) << s.message();
  EXPECT_EQ(static_cast<float>(size()), x[0]);
}

}  // namespace
}  // namespace quorum

int main(int argc, char** argv) { return run_mpi_tests(argc, argv); }
