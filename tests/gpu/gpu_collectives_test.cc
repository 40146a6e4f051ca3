// CUDA tensors through the public API on NCCL, one rank per GPU: every op x dtype x size (small
// ones fused, one above QUORUM_FUSION_THRESHOLD alone), with the caller's ready event, host and
// CUDA tensors in one step, broadcast, allgather with a first dimension that differs per rank,
// and result counts (run with QUORUM_SYNC_MODE=bounded too, where counts travel in the fused
// buffer). QUORUM_COMPRESSION=fp16|bf16 runs give the same exact results: the data are small
// integers. GpuBounded.* runs alone, as gpu_collectives_cut_n2 (GPU_TEST_STRAGGLER=1 with
// QUORUM_SYNC_MODE=bounded, QUORUM_QUORUM=1, QUORUM_STALENESS=2): rounds really run without a
// rank that sleeps, as tests/mpi/sync_policy_test.cc checks on the host. Exits 77 (all ranks)
// where a rank has no GPU of its own.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "quorum/quorum.h"
#include "tests/common/rounds.h"
#include "tests/common/test_data.h"
#include "tests/gpu/gpu_main.h"

namespace quorum {
namespace {

using gpu_test::check;
using gpu_test::DeviceBuffer;
using testing::expected_allreduce;
using testing::kAllTypes;
using testing::make_input;

constexpr ReduceOp kAllOps[] = {ReduceOp::kSum, ReduceOp::kAverage, ReduceOp::kMin,
                                ReduceOp::kMax, ReduceOp::kProduct};
constexpr size_t kSizes[] = {0, 1, 1009, 40013};  // 40013 is above the 64K threshold

int my_device() { return local_rank(); }

Tensor on_device(const DeviceBuffer& b, DataType t, size_t n, void* ready = nullptr) {
  Tensor v{b.get(), t, {static_cast<int64_t>(n)}, Device::cuda(my_device())};
  v.cuda_ready_event = ready;
  return v;
}

std::string label(DataType t, ReduceOp op, size_t n) {
  return std::string(dtype_name(t)) + "." + std::string(op_name(op)) + "." + std::to_string(n);
}

TEST(GpuAllreduce, EveryOpDtypeAndSize) {
  // The inputs are written on a stream of the caller's; quorum waits for its event.
  cudaStream_t stream;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  cudaEvent_t ready;
  check(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "event");
  uint64_t seed = 1;
  for (DataType t : kAllTypes) {
    for (ReduceOp op : kAllOps) {
      std::vector<DeviceBuffer> in, out;
      std::vector<std::vector<unsigned char>> host_in;
      for (size_t n : kSizes) {
        host_in.push_back(make_input(seed + n, rank(), n, t));
        in.emplace_back(n * dtype_size(t));
        out.emplace_back(n * dtype_size(t) + 1);
        out.back().fill(0xAB);
        check(cudaMemcpyAsync(in.back().get(), host_in.back().data(), n * dtype_size(t),
                              cudaMemcpyHostToDevice, stream),
              "upload");
      }
      check(cudaEventRecord(ready, stream), "record");
      std::vector<Handle> handles;
      for (size_t k = 0; k < std::size(kSizes); ++k) {
        handles.push_back(enqueue_allreduce("gpu." + label(t, op, kSizes[k]),
                                            on_device(in[k], t, kSizes[k], ready),
                                            on_device(out[k], t, kSizes[k]), op));
      }
      for (size_t k = 0; k < std::size(kSizes); ++k) {
        Status s = wait(handles[k]);
        ASSERT_TRUE(s.is_ok()) << label(t, op, kSizes[k]) << ": " << s.message();
        auto want = expected_allreduce(seed + kSizes[k], size(), kSizes[k], t, op);
        auto got = out[k].download();
        size_t bytes = kSizes[k] * dtype_size(t);
        ASSERT_EQ(0, std::memcmp(want.data(), got.data(), bytes)) << label(t, op, kSizes[k]);
        EXPECT_EQ(0xAB, got[bytes]) << "wrote past the end: " << label(t, op, kSizes[k]);
        if (op == ReduceOp::kSum || op == ReduceOp::kAverage) {
          EXPECT_EQ(result_count(handles[k]), size()) << label(t, op, kSizes[k]);
        }
      }
    }
  }
  cudaEventDestroy(ready);
  cudaStreamDestroy(stream);
}

TEST(GpuAllreduce, InPlaceRepeatedRounds) {
  const size_t n = 777;
  for (int round = 0; round < 20; ++round) {
    auto host = make_input(300 + round, rank(), n, DataType::kF32);
    DeviceBuffer buf(n * 4);
    buf.upload(host);
    Handle h = enqueue_allreduce("gpu.inplace", on_device(buf, DataType::kF32, n),
                                 on_device(buf, DataType::kF32, n), ReduceOp::kSum);
    Status s = wait(h);
    ASSERT_TRUE(s.is_ok()) << s.message();
    auto want = expected_allreduce(300 + round, size(), n, DataType::kF32, ReduceOp::kSum);
    auto got = buf.download();
    ASSERT_EQ(0, std::memcmp(want.data(), got.data(), n * 4)) << "round " << round;
  }
}

TEST(GpuAllreduce, HostAndCudaTensorsInOneStep) {
  for (int step = 0; step < 5; ++step) {
    std::vector<Handle> handles;
    std::vector<std::vector<unsigned char>> host_in, host_out;
    std::vector<DeviceBuffer> dev_in, dev_out;
    const size_t n = 513 + step;
    for (int k = 0; k < 6; ++k) {
      const uint64_t seed = 1000 + step * 10 + k;
      const std::string name = "mixed." + std::to_string(k);
      if (k % 2 == 0) {
        host_in.push_back(make_input(seed, rank(), n, DataType::kF32));
        host_out.emplace_back(n * 4 + 1, 0);
        handles.push_back(enqueue_allreduce(
            name, Tensor{host_in.back().data(), DataType::kF32, {int64_t(n)}, Device::host()},
            Tensor{host_out.back().data(), DataType::kF32, {int64_t(n)}, Device::host()}));
      } else {
        dev_in.emplace_back(n * 4);
        dev_out.emplace_back(n * 4);
        dev_in.back().upload(make_input(seed, rank(), n, DataType::kF32));
        handles.push_back(enqueue_allreduce(name, on_device(dev_in.back(), DataType::kF32, n),
                                            on_device(dev_out.back(), DataType::kF32, n)));
      }
    }
    size_t h = 0, d = 0;
    for (int k = 0; k < 6; ++k) {
      Status s = wait(handles[static_cast<size_t>(k)]);
      ASSERT_TRUE(s.is_ok()) << s.message();
      auto want = expected_allreduce(1000 + step * 10 + k, size(), n, DataType::kF32,
                                     ReduceOp::kAverage);
      auto got = k % 2 == 0 ? host_out[h++] : dev_out[d++].download();
      ASSERT_EQ(0, std::memcmp(want.data(), got.data(), n * 4))
          << (k % 2 == 0 ? "host" : "cuda") << " tensor " << k << ", step " << step;
    }
  }
}

TEST(GpuBroadcast, FromEveryRoot) {
  const size_t n = 4099;
  for (int root = 0; root < size(); ++root) {
    DeviceBuffer buf(n * 8);
    buf.upload(make_input(77, rank(), n, DataType::kF64));
    Status s = wait(enqueue_broadcast("gpu.bcast." + std::to_string(root),
                                      on_device(buf, DataType::kF64, n), root));
    ASSERT_TRUE(s.is_ok()) << s.message();
    auto want = make_input(77, root, n, DataType::kF64);
    auto got = buf.download();
    ASSERT_EQ(0, std::memcmp(want.data(), got.data(), n * 8)) << "root " << root;
  }
}

TEST(GpuAllgather, FirstDimensionDiffersPerRank) {
  const int64_t cols = 3;
  const int64_t rows = 2 + rank();  // differs per rank
  DeviceBuffer in(static_cast<size_t>(rows * cols) * 4);
  in.upload(make_input(900 + rank(), rank(), static_cast<size_t>(rows * cols), DataType::kI32));
  std::unique_ptr<DeviceBuffer> out;
  Tensor t{in.get(), DataType::kI32, {rows, cols}, Device::cuda(my_device())};
  Status s = wait(enqueue_allgather("gpu.gather", t, [&](const std::vector<int64_t>& shape) {
    out = std::make_unique<DeviceBuffer>(static_cast<size_t>(shape[0] * shape[1]) * 4);
    return out->get();
  }));
  ASSERT_TRUE(s.is_ok()) << s.message();
  auto got = out->download();
  size_t offset = 0;
  for (int r = 0; r < size(); ++r) {
    const size_t n = static_cast<size_t>((2 + r) * cols);
    auto want = make_input(900 + r, r, n, DataType::kI32);
    ASSERT_EQ(0, std::memcmp(want.data(), got.data() + offset, n * 4)) << "rank " << r;
    offset += n * 4;
  }
}

// Bounded rounds with a straggler (gpu_collectives_cut_n2 only). Every gradient is one-hot: rank
// r's gradient of round j is 1 at index r*R + j, so each result shows which gradients it applied.
constexpr int kStaleness = 2;  // QUORUM_STALENESS of gpu_collectives_cut_n2

bool straggler_run() {
  const char* v = std::getenv("GPU_TEST_STRAGGLER");
  return v && std::string(v) == "1";
}

using testing::sleep_ms;
using testing::slow_rank;

std::vector<float> to_floats(const std::vector<unsigned char>& bytes, size_t n) {
  std::vector<float> v(n);
  std::memcpy(v.data(), bytes.data(), n * sizeof(float));
  return v;
}

// `in_place`: the output is the gradient's own memory, so a late gradient must be taken into
// the carry before the stored result overwrites it.
void exactly_once_within_staleness(const std::string& tensor, bool in_place) {
  const int p = size(), R = 40;
  const size_t n = static_cast<size_t>(p * R);
  std::vector<std::vector<float>> results;  // per round, as this rank received it
  std::vector<int64_t> counts;
  DeviceBuffer grad(n * sizeof(float)), out(n * sizeof(float));
  std::vector<float> host(n);
  std::vector<unsigned char> bytes(n * sizeof(float));
  for (int j = 0; j < R; ++j) {
    // One rank is slow each round (longer than the cycle-time grace), the others are not.
    sleep_ms(slow_rank(11, j) == rank() ? 12 : 1);
    std::fill(host.begin(), host.end(), 0.0f);
    host[static_cast<size_t>(rank() * R + j)] = 1.0f;
    std::memcpy(bytes.data(), host.data(), bytes.size());
    grad.upload(bytes);
    Handle h = enqueue_allreduce(tensor, on_device(grad, DataType::kF32, n),
                                 on_device(in_place ? grad : out, DataType::kF32, n),
                                 ReduceOp::kSum);
    Status s = wait(h);
    ASSERT_TRUE(s.is_ok()) << "round " << j << ": " << s.message();
    results.push_back(to_floats((in_place ? grad : out).download(), n));
    counts.push_back(result_count(h));
  }
  std::vector<float> folded(n, 0.0f);
  int64_t folded_count = 0;
  int folds = 0;
  ASSERT_TRUE(flush([&](const std::string& name, const Tensor& t, int64_t gradients) {
                EXPECT_EQ(tensor, name);
                EXPECT_EQ(Device::Kind::kCuda, t.device.kind);
                EXPECT_EQ(my_device(), t.device.ordinal);
                // The view is freed right after the callback returns: read it before.
                check(cudaMemcpy(folded.data(), t.data, n * sizeof(float),
                                 cudaMemcpyDeviceToHost),
                      "reading the folded tensor");
                folded_count = gradients;
                ++folds;
              }).is_ok());
  EXPECT_LE(folds, 1);

  testing::expect_one_hot_exactly_once(results, folded, folded_count, counts, kStaleness);
  // With a quorum of 1 some round ran without its straggler, whose request was answered late.
  Stats st = stats();
  uint64_t late = st.late_answered;
  MPI_Allreduce(MPI_IN_PLACE, &late, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_GT(late, 0u) << "no round ran without its straggler";
  EXPECT_TRUE(st.bounded_mode);
  EXPECT_LE(st.bounded_peak_bytes, static_cast<uint64_t>((kStaleness + 1) * n * sizeof(float)))
      << "stored results and carries are bounded by s per tensor";
}

TEST(GpuBounded, ExactlyOnceWithAStraggler) {
  if (!straggler_run()) GTEST_SKIP() << "only in gpu_collectives_cut_n2";
  exactly_once_within_staleness("gpu.onehot", false);
}

TEST(GpuBounded, ExactlyOnceWhenTheOutputIsTheInput) {
  if (!straggler_run()) GTEST_SKIP() << "only in gpu_collectives_cut_n2";
  exactly_once_within_staleness("gpu.onehot.in_place", true);
}

TEST(GpuErrors, OutputOnAnotherDeviceKind) {
  DeviceBuffer in(16);
  std::vector<unsigned char> host(16);
  Status s = wait(enqueue_allreduce("gpu.bad", on_device(in, DataType::kF32, 4),
                                    Tensor{host.data(), DataType::kF32, {4}, Device::host()}));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("gpu.bad"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace quorum

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  // One GPU per rank on each host: skip everywhere if any rank lacks its own.
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
  int local_rank = 0, local_size = 1;
  MPI_Comm_rank(local, &local_rank);
  MPI_Comm_size(local, &local_size);
  MPI_Comm_free(&local);
  const int devices = quorum::gpu_test::device_count();
  int mine = devices >= local_size ? 1 : 0, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!all) {
    int world = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &world);
    if (world == 0) std::printf("fewer CUDA devices than ranks on a host: skipping\n");
    MPI_Finalize();
    // One GPU for two ranks is a legitimate skip; no usable GPU at all may be a broken driver.
    return devices == 0 ? quorum::gpu_test::no_device_exit() : quorum::gpu_test::kSkip;
  }
  quorum::gpu_test::check(cudaSetDevice(local_rank), "cudaSetDevice");
  quorum::Status s = quorum::init();
  if (!s.is_ok()) {
    // The other ranks may be inside init or a test already: end them all now, not at the
    // test's timeout.
    std::fprintf(stderr, "quorum::init failed: %s\n", s.message().c_str());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  if (quorum::rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int rc = RUN_ALL_TESTS();
  s = quorum::shutdown();
  if (!s.is_ok()) {
    std::fprintf(stderr, "quorum::shutdown failed: %s\n", s.message().c_str());
    rc = 1;
  }
  int worst = 0;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
