// Shared by the GPU tests: skip (exit 77, which meson reports as SKIP) where no CUDA device
// is usable, and small RAII helpers for device memory.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace quorum::gpu_test {

inline constexpr int kSkip = 77;

// Number of usable CUDA devices; 0 when the driver or the devices are missing (and why, on
// stderr: a broken driver must not read like a machine without a GPU).
inline int device_count() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    std::fprintf(stderr, "cudaGetDeviceCount: %s\n", cudaGetErrorString(e));
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

// What a test returns when it finds no usable device: 77 (SKIP), or 1 (FAIL) where
// QUORUM_GPU_REQUIRED=1 says the machine has a GPU (tests/gpu/run.sh sets it when nvidia-smi
// lists one), so a driver that CUDA cannot use fails the run instead of skipping every test.
inline int no_device_exit() {
  const char* required = std::getenv("QUORUM_GPU_REQUIRED");
  if (required && std::string_view(required) == "1") {
    std::fprintf(stderr, "QUORUM_GPU_REQUIRED=1 but CUDA sees no usable device\n");
    return 1;
  }
  return kSkip;
}

inline void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
  std::abort();
}

// Device memory of `bytes` (at least 1), freed on scope exit. upload() and fill() return once
// the device holds the data: quorum's stream is non-blocking, so it is not ordered after work on
// the legacy default stream (a pageable cudaMemcpy may return before its DMA finished, and
// cudaMemset is asynchronous).
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    check(cudaMalloc(&p_, bytes ? bytes : 1), "cudaMalloc");
  }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr; }

  void* get() const { return p_; }
  size_t bytes() const { return bytes_; }
  void upload(const std::vector<unsigned char>& host) {
    check(cudaMemcpy(p_, host.data(), std::min(bytes_, host.size()), cudaMemcpyHostToDevice),
          "upload");
    check(cudaDeviceSynchronize(), "upload (synchronise)");
  }
  std::vector<unsigned char> download() const {
    std::vector<unsigned char> host(bytes_);
    check(cudaMemcpy(host.data(), p_, bytes_, cudaMemcpyDeviceToHost), "download");
    return host;
  }
  void fill(int byte) {
    check(cudaMemset(p_, byte, bytes_ ? bytes_ : 1), "cudaMemset");
    check(cudaDeviceSynchronize(), "cudaMemset (synchronise)");
  }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace quorum::gpu_test
