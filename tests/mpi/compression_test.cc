// Host compression (QUORUM_COMPRESSION=fp16|bf16, QUORUM_COMPRESSION_FEEDBACK): floating host
// tensors travel as halves. Run under several settings (meson passes them in the environment;
// the test reads the same variables to know what to expect):
// - values exact in every half dtype come back exact, for every floating dtype, fused or alone;
// - random data come back bitwise identical on every rank and within the rounding bound;
// - stats().bytes counts two bytes an element on the wire (four without compression);
// - with error feedback, what one rank sends over many rounds adds up to what it was given.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "ops/half.h"
#include "quorum/quorum.h"
#include "tests/common/agree.h"
#include "tests/common/test_data.h"
#include "tests/mpi/mpi_main.h"

namespace quorum {
namespace {

std::string env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

DataType compression() {
  std::string c = env("QUORUM_COMPRESSION", "none");
  return c == "fp16" ? DataType::kF16 : c == "bf16" ? DataType::kBF16 : DataType::kF32;
}

bool compressed() { return compression() != DataType::kF32; }
bool feedback() { return env("QUORUM_COMPRESSION_FEEDBACK", "0") == "1"; }

// `x` rounded to the half dtype of this run (unchanged without compression).
float round_trip(float x) {
  switch (compression()) {
    case DataType::kF16: return ops::f16_to_float(ops::float_to_f16(x));
    case DataType::kBF16: return ops::bf16_to_float(ops::float_to_bf16(x));
    default: return x;
  }
}

void expect_identical_on_all_ranks(const void* p, size_t bytes, const std::string& what) {
  testing::expect_identical_on_all_ranks(MPI_COMM_WORLD, p, bytes, what + " on");
}

// Element i of rank r: a multiple of 1/4 below 8 in magnitude, so every sum over up to 4 ranks
// is exact in bf16 (8 significant bits) and f16 alike.
double exact_value(int r, size_t i) {
  return static_cast<double>(static_cast<int>((i * 7 + static_cast<size_t>(r) * 3) % 13) - 6) *
         0.25;
}

Tensor view(std::vector<unsigned char>& b, DataType t, size_t n) {
  return Tensor{b.data(), t, {static_cast<int64_t>(n)}, Device::host()};
}

TEST(Compression, ExactValuesStayExactForEveryFloatingDtype) {
  // Fused small tensors, one larger than QUORUM_FUSION_MAX_TENSOR (a plan of its own) and an
  // empty one; Sum, Min and Max (an Average of these by 3 ranks would round).
  const std::vector<size_t> sizes = {0, 1, 3, 1000, 70000};
  for (DataType t : {DataType::kF16, DataType::kBF16, DataType::kF32, DataType::kF64}) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMin, ReduceOp::kMax}) {
      std::vector<std::vector<unsigned char>> in, out;
      std::vector<Handle> handles;
      for (size_t n : sizes) {
        in.emplace_back(n * dtype_size(t));
        out.emplace_back(n * dtype_size(t) + 1, 0xAB);
        for (size_t i = 0; i < n; ++i) testing::store(in.back().data(), i, t, exact_value(rank(), i));
      }
      for (size_t k = 0; k < sizes.size(); ++k) {
        std::string name = "exact." + std::string(dtype_name(t)) + "." +
                           std::string(op_name(op)) + "." + std::to_string(sizes[k]);
        handles.push_back(
            enqueue_allreduce(name, view(in[k], t, sizes[k]), view(out[k], t, sizes[k]), op));
      }
      for (size_t k = 0; k < sizes.size(); ++k) {
        const std::string what =
            std::string(dtype_name(t)) + "." + std::string(op_name(op)) + "." +
            std::to_string(sizes[k]);
        Status s = wait(handles[k]);
        EXPECT_TRUE(s.is_ok()) << what << ": " << s.message();
        std::vector<unsigned char> want(sizes[k] * dtype_size(t));
        for (size_t i = 0; i < sizes[k]; ++i) {
          double acc = exact_value(0, i);
          for (int r = 1; r < size(); ++r) {
            double v = exact_value(r, i);
            acc = op == ReduceOp::kSum ? acc + v : op == ReduceOp::kMin ? std::min(acc, v)
                                                                        : std::max(acc, v);
          }
          testing::store(want.data(), i, t, acc);
        }
        EXPECT_EQ(0, std::memcmp(want.data(), out[k].data(), want.size())) << what;
        EXPECT_EQ(0xAB, out[k].back()) << "wrote past the end: " << what;
        expect_identical_on_all_ranks(out[k].data(), want.size(), what);
      }
    }
  }
}

TEST(Compression, RandomDataAgreeBitwiseWithinTheRoundingBound) {
  constexpr size_t n = 100000;
  std::mt19937 gen(1234u + static_cast<unsigned>(rank()));
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> in(n), out(n);
  for (float& x : in) x = dist(gen);
  Tensor ti{in.data(), DataType::kF32, {static_cast<int64_t>(n)}, Device::host()};
  Tensor to{out.data(), DataType::kF32, {static_cast<int64_t>(n)}, Device::host()};
  ASSERT_TRUE(allreduce("random", ti, to, ReduceOp::kAverage).is_ok());
  expect_identical_on_all_ranks(out.data(), n * 4, "random average");
  // The exact average, from every rank's input (regenerated from its seed).
  std::vector<double> exact(n, 0.0);
  for (int r = 0; r < size(); ++r) {
    std::mt19937 g(1234u + static_cast<unsigned>(r));
    for (size_t i = 0; i < n; ++i) exact[i] += dist(g);
  }
  // Each of the `size` casts and `size - 1` combines rounds once, by at most half a unit in the
  // last place of a value below `size` in magnitude: 2^-11 (f16) or 2^-8 (bf16) relative.
  const double unit = compression() == DataType::kF16    ? 0x1p-11
                      : compression() == DataType::kBF16 ? 0x1p-8
                                                         : 0x1p-23;
  const double bound = 2.0 * size() * unit;
  double worst = 0;
  size_t rounded = 0;
  for (size_t i = 0; i < n; ++i) {
    double err = std::abs(out[i] - exact[i] / size());
    worst = std::max(worst, err);
    if (err > 1e-6) ++rounded;
  }
  EXPECT_LE(worst, bound) << "worst error against the exact average";
  // Compression did happen: most results carry a half's rounding (none without compression).
  if (compressed()) {
    EXPECT_GT(rounded, n / 2);
  } else {
    EXPECT_EQ(rounded, 0u);
  }
}

TEST(Compression, BytesOnTheWireAreTwoPerElement) {
  constexpr size_t n = size_t{1} << 20;  // 4 MiB of f32: a plan of its own
  std::vector<float> buf(n, 1.0f);
  Tensor t{buf.data(), DataType::kF32, {static_cast<int64_t>(n)}, Device::host()};
  const uint64_t before = stats().bytes;
  ASSERT_TRUE(allreduce("bytes", t, t, ReduceOp::kSum).is_ok());
  const uint64_t sent = stats().bytes - before;
  EXPECT_EQ(sent, n * (compressed() ? 2 : 4));
  EXPECT_EQ(buf[0], static_cast<float>(size()));
}

TEST(Compression, FeedbackKeepsWhatRoundingTookOff) {
  // Rank 0 gives 1/3 + a little in every round, the others zero: each round's result is exactly
  // what rank 0 sent (a sum with zeros does not round), so the rounds' results add up to what
  // rank 0 sent in total. With feedback that is what it was given, less one last residual;
  // without, every round loses the same rounding error.
  constexpr int kRounds = 64;
  constexpr size_t n = 512;
  std::vector<float> given(n);
  for (size_t i = 0; i < n; ++i) given[i] = 1.0f / 3.0f + static_cast<float>(i) * 1e-3f;
  std::vector<double> total(n, 0.0);
  std::vector<float> in(n), out(n);
  for (int k = 0; k < kRounds; ++k) {
    for (size_t i = 0; i < n; ++i) in[i] = rank() == 0 ? given[i] : 0.0f;
    Tensor ti{in.data(), DataType::kF32, {static_cast<int64_t>(n)}, Device::host()};
    Tensor to{out.data(), DataType::kF32, {static_cast<int64_t>(n)}, Device::host()};
    ASSERT_TRUE(allreduce("feedback", ti, to, ReduceOp::kSum).is_ok());
    for (size_t i = 0; i < n; ++i) total[i] += out[i];
  }
  double worst = 0, lost_without = 0;
  for (size_t i = 0; i < n; ++i) {
    worst = std::max(worst, std::abs(total[i] - kRounds * static_cast<double>(given[i])));
    lost_without = std::max(
        lost_without, kRounds * std::abs(static_cast<double>(given[i]) - round_trip(given[i])));
  }
  // One residual is at most half a unit of a value near `given`: below 2^-9 for f16 on [0.33,
  // 0.85], 2^-6 for bf16.
  const double one_residual = compression() == DataType::kBF16 ? 0x1p-6 : 0x1p-9;
  if (!compressed()) {
    EXPECT_LE(worst, 1e-4);
  } else if (feedback()) {
    EXPECT_LE(worst, one_residual);
    EXPECT_GT(lost_without, 4 * one_residual) << "the data do not show what feedback does";
  } else {
    EXPECT_NEAR(worst, lost_without, 1e-6 * kRounds);
  }
}

}  // namespace
}  // namespace quorum

int main(int argc, char** argv) { return run_mpi_tests(argc, argv); }
