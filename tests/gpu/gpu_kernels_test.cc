// The pack/unpack/accumulate kernels on one GPU, without NCCL: every dtype, with and without
// fp16/bf16 compression, zeros for stand-ins, carries, count slots, Average by count and by a
// fixed divisor (and no division for a count of 0), a kept copy (with and without an output),
// and unpack in place. Inputs are small integers from the (seed, rank, index) rule, so the
// expected bytes are exact. Exits 77 without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "ops/nccl/device_dtypes.h"
#include "ops/nccl/pack_kernels.h"
#include "tests/common/test_data.h"
#include "tests/gpu/gpu_main.h"

namespace quorum {
namespace {

using gpu_test::check;
using gpu_test::DeviceBuffer;
using ops::nccl::PackEntry;
using testing::kAllTypes;
using testing::store;
using testing::value;

constexpr size_t kSizes[] = {0, 1, 1009, 8192, 20000, 3};

bool floating(DataType t) {
  return t == DataType::kF16 || t == DataType::kBF16 || t == DataType::kF32 ||
         t == DataType::kF64;
}

// What unpack must produce from an exact integer sum `sum` and a divisor (0 = none), as the
// host's ops::divide would.
double reduce_result(double sum, double divisor, DataType t) {
  if (divisor <= 0) return sum;
  switch (t) {
    case DataType::kF64: return sum / divisor;
    case DataType::kF32:
    case DataType::kF16:
    case DataType::kBF16:
      return static_cast<double>(static_cast<float>(sum) / static_cast<float>(divisor));
    case DataType::kI64:
      return static_cast<double>(static_cast<int64_t>(sum) / static_cast<int64_t>(divisor));
    default: return std::trunc(sum / divisor);
  }
}

struct Case {
  DataType dtype;
  DataType compression;  // kF32 = none
};

class Kernels : public ::testing::TestWithParam<Case> {};

TEST_P(Kernels, PackUnpackWithCarriesCountsAndAverage) {
  const DataType t = GetParam().dtype;
  const DataType wire = ops::device_wire_dtype_for(t, GetParam().compression);
  const DataType acc = ops::device_accumulate_dtype(t);
  ASSERT_TRUE(ops::nccl::pack_supported(t, wire));
  const size_t n = std::size(kSizes);
  std::vector<DeviceBuffer> src, carry, dst, keep;
  std::vector<PackEntry> entries(n);
  std::vector<std::vector<unsigned char>> src_host(n), carry_host(n);
  for (size_t k = 0; k < n; ++k) {
    const size_t e = kSizes[k];
    src_host[k] = testing::make_input(10 + k, 0, e, t);
    carry_host[k] = testing::make_input(20 + k, 1, e, acc);
    src.emplace_back(e * dtype_size(t));
    carry.emplace_back(e * dtype_size(acc));
    dst.emplace_back(e * dtype_size(t));
    keep.emplace_back(e * dtype_size(t));
    src[k].upload(src_host[k]);
    carry[k].upload(carry_host[k]);
    dst[k].fill(0xAB);
    keep[k].fill(0xCD);
    entries[k] = PackEntry{k == 1 ? nullptr : src[k].get(),  // part 1 stands in with zeros
                           k % 2 == 0 ? carry[k].get() : nullptr,  // even parts carry
                           dst[k].get(), k == 2 ? keep[k].get() : nullptr, e, 0, 0,
                           static_cast<float>(k + 1), 0};
  }
  uint64_t total = 0;
  const uint64_t chunks = ops::nccl::lay_out(entries.data(), static_cast<int>(n), &total);
  const size_t wire_bytes = dtype_size(wire);
  DeviceBuffer fused(ops::nccl::fused_bytes(total, wire_bytes, n, true));
  DeviceBuffer table(n * sizeof(PackEntry));
  check(cudaMemcpy(table.get(), entries.data(), n * sizeof(PackEntry), cudaMemcpyHostToDevice),
        "table");
  auto* counts = reinterpret_cast<float*>(static_cast<char*>(fused.get()) +
                                          ops::nccl::count_slots_offset(total, wire_bytes));
  const auto* table_ptr = static_cast<const PackEntry*>(table.get());
  check(ops::nccl::launch_pack(table_ptr, static_cast<int>(n), chunks, t, wire, fused.get(),
                               counts, nullptr),
        "pack");
  check(cudaDeviceSynchronize(), "pack sync");
  std::vector<float> got_counts(n);
  check(cudaMemcpy(got_counts.data(), counts, n * sizeof(float), cudaMemcpyDeviceToHost), "counts");
  for (size_t k = 0; k < n; ++k) EXPECT_EQ(got_counts[k], static_cast<float>(k + 1)) << k;

  auto sum_at = [&](size_t k, size_t i) {
    double s = k == 1 ? 0.0 : static_cast<double>(value(10 + k, 0, i, t));
    if (k % 2 == 0) s += static_cast<double>(value(20 + k, 1, i, acc));
    return s;
  };
  // Unpack three ways: plain (Sum), Average by the count slots, Average by a fixed divisor.
  for (int mode = 0; mode < 3; ++mode) {
    const bool average = mode > 0;
    const float* by_counts = mode == 1 ? counts : nullptr;
    check(ops::nccl::launch_unpack(table_ptr, static_cast<int>(n), chunks, t, wire, fused.get(),
                                   by_counts, average, 3.0, nullptr),
          "unpack");
    check(cudaDeviceSynchronize(), "unpack sync");
    for (size_t k = 0; k < n; ++k) {
      const size_t e = kSizes[k];
      const double divisor = mode == 0 ? 0.0 : mode == 1 ? static_cast<double>(k + 1) : 3.0;
      std::vector<unsigned char> want(e * dtype_size(t) + 1);
      for (size_t i = 0; i < e; ++i) store(want.data(), i, t, reduce_result(sum_at(k, i), divisor, t));
      std::vector<unsigned char> got = dst[k].download();
      ASSERT_EQ(0, std::memcmp(want.data(), got.data(), e * dtype_size(t)))
          << dtype_name(t) << " over " << dtype_name(wire) << ", part " << k << ", mode " << mode;
      if (k == 2) {
        std::vector<unsigned char> kept = keep[k].download();
        ASSERT_EQ(0, std::memcmp(want.data(), kept.data(), e * dtype_size(t))) << "kept copy";
      }
    }
  }
}

TEST_P(Kernels, ZeroCountIsNotDividedAndKeepWithoutOutput) {
  // Part 0: its reduced count is 0 (no gradient anywhere), so Average must not divide.
  // Part 1: a stood-in round with no output on this rank, only the kept copy.
  const DataType t = GetParam().dtype;
  const DataType wire = ops::device_wire_dtype_for(t, GetParam().compression);
  const size_t e = 9001;  // two chunks each
  const size_t bytes = e * dtype_size(t);
  DeviceBuffer src0(bytes), src1(bytes), dst0(bytes), keep1(bytes);
  src0.upload(testing::make_input(40, 0, e, t));
  src1.upload(testing::make_input(41, 1, e, t));
  dst0.fill(0xAB);
  keep1.fill(0xCD);
  PackEntry entries[2] = {{src0.get(), nullptr, dst0.get(), nullptr, e, 0, 0, 0.0f, 0},
                          {src1.get(), nullptr, nullptr, keep1.get(), e, 0, 0, 2.0f, 0}};
  uint64_t total = 0;
  const uint64_t chunks = ops::nccl::lay_out(entries, 2, &total);
  const size_t wire_bytes = dtype_size(wire);
  DeviceBuffer fused(ops::nccl::fused_bytes(total, wire_bytes, 2, true));
  DeviceBuffer table(sizeof(entries));
  check(cudaMemcpy(table.get(), entries, sizeof(entries), cudaMemcpyHostToDevice), "table");
  auto* counts = reinterpret_cast<float*>(static_cast<char*>(fused.get()) +
                                          ops::nccl::count_slots_offset(total, wire_bytes));
  const auto* table_ptr = static_cast<const PackEntry*>(table.get());
  check(ops::nccl::launch_pack(table_ptr, 2, chunks, t, wire, fused.get(), counts, nullptr),
        "pack");
  check(ops::nccl::launch_unpack(table_ptr, 2, chunks, t, wire, fused.get(), counts, true, 3.0,
                                 nullptr),
        "unpack");
  check(cudaDeviceSynchronize(), "sync");
  std::vector<unsigned char> want0(bytes + 1), want1(bytes + 1);
  for (size_t i = 0; i < e; ++i) {
    store(want0.data(), i, t, reduce_result(static_cast<double>(value(40, 0, i, t)), 0.0, t));
    store(want1.data(), i, t, reduce_result(static_cast<double>(value(41, 1, i, t)), 2.0, t));
  }
  auto got0 = dst0.download();
  auto got1 = keep1.download();
  ASSERT_EQ(0, std::memcmp(want0.data(), got0.data(), bytes))
      << dtype_name(t) << " over " << dtype_name(wire) << ": a count of 0 must not divide";
  ASSERT_EQ(0, std::memcmp(want1.data(), got1.data(), bytes))
      << dtype_name(t) << " over " << dtype_name(wire) << ": the kept copy without an output";
}

TEST_P(Kernels, UnpackInPlaceDividesTheOutput) {
  const DataType t = GetParam().dtype;
  if (GetParam().compression != DataType::kF32 || ops::device_wire_dtype_for(t, DataType::kF32) != t) {
    GTEST_SKIP() << "in place only where the tensor is its own wire dtype";
  }
  const size_t e = 20011;
  auto host = testing::make_input(3, 2, e, t);
  DeviceBuffer buf(e * dtype_size(t));
  buf.upload(host);
  PackEntry entry{nullptr, nullptr, buf.get(), nullptr, e, 0, 0, 1.0f, 0};
  uint64_t total = 0;
  const uint64_t chunks = ops::nccl::lay_out(&entry, 1, &total);
  DeviceBuffer table(sizeof(PackEntry));
  check(cudaMemcpy(table.get(), &entry, sizeof(entry), cudaMemcpyHostToDevice), "table");
  check(ops::nccl::launch_unpack(static_cast<const PackEntry*>(table.get()), 1, chunks, t, t,
                                 buf.get(), nullptr, true, 4.0, nullptr),
        "unpack");
  check(cudaDeviceSynchronize(), "sync");
  std::vector<unsigned char> want(e * dtype_size(t) + 1);
  for (size_t i = 0; i < e; ++i) {
    store(want.data(), i, t, reduce_result(static_cast<double>(value(3, 2, i, t)), 4.0, t));
  }
  auto got = buf.download();
  ASSERT_EQ(0, std::memcmp(want.data(), got.data(), e * dtype_size(t))) << dtype_name(t);
}

TEST_P(Kernels, AccumulateAddsALateGradientToItsCarry) {
  const DataType t = GetParam().dtype;
  if (GetParam().compression != DataType::kF32) GTEST_SKIP() << "carries are never compressed";
  const DataType acc = ops::device_accumulate_dtype(t);
  const size_t e = 70001;
  auto carry_host = testing::make_input(5, 0, e, acc);
  auto grad_host = testing::make_input(6, 1, e, t);
  DeviceBuffer carry(e * dtype_size(acc)), grad(e * dtype_size(t));
  carry.upload(carry_host);
  grad.upload(grad_host);
  check(ops::nccl::launch_accumulate(carry.get(), grad.get(), e, t, nullptr), "accumulate");
  check(cudaDeviceSynchronize(), "sync");
  std::vector<unsigned char> want(e * dtype_size(acc) + 1);
  for (size_t i = 0; i < e; ++i) {
    double s = static_cast<double>(value(5, 0, i, acc)) + static_cast<double>(value(6, 1, i, t));
    store(want.data(), i, acc, s);
  }
  auto got = carry.download();
  ASSERT_EQ(0, std::memcmp(want.data(), got.data(), e * dtype_size(acc))) << dtype_name(t);
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (DataType t : kAllTypes) {
    cases.push_back({t, DataType::kF32});
    if (floating(t)) {
      cases.push_back({t, DataType::kF16});
      cases.push_back({t, DataType::kBF16});
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(
    EveryDtype, Kernels, ::testing::ValuesIn(all_cases()),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string c = info.param.compression == DataType::kF32
                          ? "none"
                          : std::string(dtype_name(info.param.compression));
      return std::string(dtype_name(info.param.dtype)) + "_" + c;
    });

}  // namespace
}  // namespace quorum

int main(int argc, char** argv) {
  if (quorum::gpu_test::device_count() == 0) {
    std::printf("no CUDA device: skipping\n");
    return quorum::gpu_test::no_device_exit();
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
