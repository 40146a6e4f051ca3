// Pack/unpack kernel bandwidth against cudaMemcpyAsync device to device of the same bytes.
// For each total size, 64 tensors of f32 are packed into one fusion buffer (one launch) and
// unpacked again (one launch); a single cudaMemcpyAsync of the whole buffer is the reference.
// Bandwidth counts the bytes written (= bytes read for f32 over f32). Also shown: f32 packed to
// fp16 (compression) and f16 packed to f32 (the uncompressed half path). Prints the GPU name;
// exits 1 on a wrong element, 77 without a GPU. --quick: two sizes, fewer repetitions.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ops/nccl/pack_kernels.h"
#include "tests/gpu/gpu_main.h"

namespace {

using quorum::DataType;
using quorum::dtype_size;
using quorum::gpu_test::check;
using quorum::gpu_test::DeviceBuffer;
using quorum::ops::nccl::PackEntry;

constexpr int kParts = 64;

// Milliseconds per call of `fn`, averaged over `reps` after two warm-ups, timed with events.
template <typename Fn>
double time_ms(int reps, Fn&& fn) {
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "event");
  check(cudaEventCreate(&b), "event");
  fn();
  fn();
  check(cudaEventRecord(a, nullptr), "record");
  for (int i = 0; i < reps; ++i) fn();
  check(cudaEventRecord(b, nullptr), "record");
  check(cudaEventSynchronize(b), "sync");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, a, b), "elapsed");
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / reps;
}

struct Layout {
  std::vector<PackEntry> entries;
  uint64_t total = 0;
  uint64_t chunks = 0;
};

// kParts parts of unequal sizes (so part boundaries fall inside chunks) summing to `elements`.
Layout make_layout(size_t elements, char* src, size_t src_esize, char* dst, size_t dst_esize) {
  Layout l;
  l.entries.resize(kParts);
  size_t left = elements, offset = 0;
  for (int k = 0; k < kParts; ++k) {
    const size_t base = elements / kParts;
    size_t n = k == kParts - 1 ? left : (k % 2 ? base + 37 : (base > 37 ? base - 37 : base));
    n = std::min(n, left);
    l.entries[k] = PackEntry{src + offset * src_esize, nullptr, dst + offset * dst_esize, nullptr,
                             n, 0, 0, 1.0f, 0};
    offset += n;
    left -= n;
  }
  l.chunks = quorum::ops::nccl::lay_out(l.entries.data(), kParts, &l.total);
  return l;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (quorum::gpu_test::device_count() == 0) {
    std::printf("no CUDA device: skipping\n");
    return quorum::gpu_test::no_device_exit();
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "properties");
  std::printf("GPU: %s (sm_%d%d, %d SMs, %.0f GiB)\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, static_cast<double>(prop.totalGlobalMem) / (1 << 30));
  std::vector<size_t> sizes_mib = quick ? std::vector<size_t>{1, 16}
                                        : std::vector<size_t>{1, 4, 16, 64, 256};
  const int reps = quick ? 5 : 20;
  std::printf("%10s %12s %12s %12s %8s %8s %14s %14s\n", "MiB", "memcpy GB/s", "pack GB/s",
              "unpack GB/s", "pack/mc", "unp/mc", "f32->fp16 GB/s", "f16->f32 GB/s");
  bool ok = true;
  for (size_t mib : sizes_mib) {
    const size_t bytes = mib << 20;
    const size_t elements = bytes / 4;
    DeviceBuffer src(bytes), fused(bytes), dst(bytes), half_fused(bytes / 2), half_src(bytes / 2);
    std::vector<float> host(elements);
    for (size_t i = 0; i < elements; ++i) host[i] = static_cast<float>(i % 1000) - 500.0f;
    check(cudaMemcpy(src.get(), host.data(), bytes, cudaMemcpyHostToDevice), "upload");
    check(cudaMemset(half_src.get(), 0, bytes / 2), "memset");
    Layout l = make_layout(elements, static_cast<char*>(src.get()), 4,
                           static_cast<char*>(dst.get()), 4);
    Layout lh = make_layout(elements, static_cast<char*>(half_src.get()), 2,
                            static_cast<char*>(dst.get()), 4);
    DeviceBuffer table(sizeof(PackEntry) * kParts), table_h(sizeof(PackEntry) * kParts);
    check(cudaMemcpy(table.get(), l.entries.data(), sizeof(PackEntry) * kParts,
                     cudaMemcpyHostToDevice), "table");
    check(cudaMemcpy(table_h.get(), lh.entries.data(), sizeof(PackEntry) * kParts,
                     cudaMemcpyHostToDevice), "table");
    auto* t = static_cast<const PackEntry*>(table.get());
    auto* th = static_cast<const PackEntry*>(table_h.get());
    double memcpy_ms = time_ms(reps, [&] {
      check(cudaMemcpyAsync(fused.get(), src.get(), bytes, cudaMemcpyDeviceToDevice, nullptr),
            "memcpy");
    });
    double pack_ms = time_ms(reps, [&] {
      check(quorum::ops::nccl::launch_pack(t, kParts, l.chunks, DataType::kF32, DataType::kF32,
                                           fused.get(), nullptr, nullptr), "pack");
    });
    double unpack_ms = time_ms(reps, [&] {
      check(quorum::ops::nccl::launch_unpack(t, kParts, l.chunks, DataType::kF32, DataType::kF32,
                                             fused.get(), nullptr, false, 1.0, nullptr), "unpack");
    });
    double compress_ms = time_ms(reps, [&] {
      check(quorum::ops::nccl::launch_pack(t, kParts, l.chunks, DataType::kF32, DataType::kF16,
                                           half_fused.get(), nullptr, nullptr), "pack fp16");
    });
    double widen_ms = time_ms(reps, [&] {
      check(quorum::ops::nccl::launch_pack(th, kParts, lh.chunks, DataType::kF16, DataType::kF32,
                                           fused.get(), nullptr, nullptr), "pack f16");
    });
    // Correctness: pack then unpack of f32 is the identity, element for element.
    check(quorum::ops::nccl::launch_pack(t, kParts, l.chunks, DataType::kF32, DataType::kF32,
                                         fused.get(), nullptr, nullptr), "pack");
    check(cudaMemset(dst.get(), 0, bytes), "memset");
    check(quorum::ops::nccl::launch_unpack(t, kParts, l.chunks, DataType::kF32, DataType::kF32,
                                           fused.get(), nullptr, false, 1.0, nullptr), "unpack");
    std::vector<float> back(elements);
    check(cudaMemcpy(back.data(), dst.get(), bytes, cudaMemcpyDeviceToHost), "download");
    if (std::memcmp(back.data(), host.data(), bytes) != 0) {
      std::printf("WRONG: pack/unpack of %zu MiB did not round-trip\n", mib);
      ok = false;
    }
    auto gbs = [&](double b, double ms) { return b / (ms * 1e-3) / 1e9; };
    std::printf("%10zu %12.1f %12.1f %12.1f %7.0f%% %7.0f%% %14.1f %14.1f\n", mib,
                gbs(bytes, memcpy_ms), gbs(bytes, pack_ms), gbs(bytes, unpack_ms),
                100.0 * memcpy_ms / pack_ms, 100.0 * memcpy_ms / unpack_ms,
                gbs(bytes, compress_ms), gbs(bytes, widen_ms));
  }
  std::printf("(GB/s of f32 bytes; pack/mc and unp/mc: kernel bandwidth as a share of "
              "cudaMemcpyAsync D2D, goal >= 80%%)\n");
  return ok ? 0 : 1;
}
