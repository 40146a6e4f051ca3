// CUDA tensors where they cannot run: on a machine without a GPU (or a build without NCCL) every
// rank's CUDA request fails with an error naming the tensor, nothing hangs, and host tensors keep
// working afterwards. Exits 77 where a GPU is present (tests/gpu covers that case).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "ops/nccl/device_backend.h"
#include "tests/common/test_data.h"
#include "tests/mpi/mpi_main.h"
#if QUORUM_TEST_CUDA
#include "tests/gpu/gpu_main.h"
#endif

namespace quorum {
namespace {

TEST(NoDevice, CudaTensorsFailEverywhereAndHostWorkGoesOn) {
  // Never dereferenced: the request fails before any device memory is touched.
  void* fake = reinterpret_cast<void*>(uintptr_t{0x1000});
  Tensor t{fake, DataType::kF32, {16}, Device::cuda(0)};
  for (int round = 0; round < 3; ++round) {
    Status s = wait(enqueue_allreduce("cuda.grad", t, t));
    ASSERT_FALSE(s.is_ok());
    EXPECT_NE(s.message().find("cuda.grad"), std::string::npos) << s.message();
    if (round == 0 && rank() == 0) std::printf("failed as expected: %s\n", s.message().c_str());
    if (!ops::device_backend_built()) {
      EXPECT_EQ(s.code(), StatusCode::kUnimplemented) << s.message();
    }
    s = wait(enqueue_broadcast("cuda.bcast", t, 0));
    ASSERT_FALSE(s.is_ok());
    EXPECT_NE(s.message().find("cuda.bcast"), std::string::npos) << s.message();
  }
  const size_t n = 1009;
  auto in = testing::make_input(42, rank(), n, DataType::kF64);
  std::vector<unsigned char> out(in.size());
  Status s = wait(enqueue_allreduce(
      "host.grad", Tensor{in.data(), DataType::kF64, {int64_t(n)}, Device::host()},
      Tensor{out.data(), DataType::kF64, {int64_t(n)}, Device::host()}, ReduceOp::kSum));
  ASSERT_TRUE(s.is_ok()) << s.message();
  auto want = testing::expected_allreduce(42, size(), n, DataType::kF64, ReduceOp::kSum);
  EXPECT_EQ(0, std::memcmp(want.data(), out.data(), n * 8));
}

}  // namespace
}  // namespace quorum

int main(int argc, char** argv) {
#if QUORUM_TEST_CUDA
  if (quorum::gpu_test::device_count() > 0) return quorum::gpu_test::kSkip;
#endif
  return run_mpi_tests(argc, argv);
}
