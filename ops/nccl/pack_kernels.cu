// CUDA kernels of the device fusion path: one launch packs every tensor of a plan into the
// fusion buffer (casting to the wire dtype, adding carries, writing count slots), one launch
// unpacks (dividing for Average, casting back). Index math lives in pack_layout.h so the CPU
// unit tests check the same code.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "ops/nccl/pack_kernels.h"

namespace quorum::ops::nccl {
namespace {

// Storage and arithmetic ("compute") type per dtype: f16/bf16 compute in float.
template <DataType D>
struct Elem;
// f16 and bf16: stored as T, computed in float, converted by CUDA's round-to-nearest intrinsics.
template <typename T>
struct Narrow {
  static constexpr bool kHalf = std::is_same_v<T, __half>;  // else bf16
  using S = T;
  using C = float;
  __device__ static C load(S v) {
    if constexpr (kHalf) {
      return __half2float(v);
    } else {
      return __bfloat162float(v);
    }
  }
  __device__ static S store(C v) {
    if constexpr (kHalf) {
      return __float2half_rn(v);
    } else {
      return __float2bfloat16_rn(v);
    }
  }
};
template <>
struct Elem<DataType::kF16> : Narrow<__half> {};
template <>
struct Elem<DataType::kBF16> : Narrow<__nv_bfloat16> {};
template <typename T>
struct Plain {
  using S = T;
  using C = T;
  __device__ static C load(S v) { return v; }
  __device__ static S store(C v) { return v; }
};
template <>
struct Elem<DataType::kF32> : Plain<float> {};
template <>
struct Elem<DataType::kF64> : Plain<double> {};
template <>
struct Elem<DataType::kI32> : Plain<int32_t> {};
template <>
struct Elem<DataType::kI64> : Plain<int64_t> {};
template <>
struct Elem<DataType::kU8> : Plain<uint8_t> {};

__host__ __device__ constexpr bool is_floating(DataType t) {
  return t == DataType::kF16 || t == DataType::kBF16 || t == DataType::kF32 ||
         t == DataType::kF64;
}

__host__ __device__ constexpr DataType acc_of(DataType t) {
  return (t == DataType::kF16 || t == DataType::kBF16) ? DataType::kF32 : t;
}

// Average's division, matching ops::divide on the host: floats divide truly in their own
// precision, i64 divides as an integer, the other integers go through double and truncate.
template <typename C>
__device__ C divide_by(C v, double d) {
  if constexpr (std::is_same_v<C, float>) {
    return v / static_cast<float>(d);
  } else if constexpr (std::is_same_v<C, double>) {
    return v / d;
  } else if constexpr (std::is_same_v<C, int64_t>) {
    return v / static_cast<int64_t>(d);
  } else {
    return static_cast<C>(static_cast<double>(v) / d);
  }
}

// A value of compute type V in wire dtype W. f64 goes to f16/bf16 in one rounding (through f32
// it would round twice, and could land one ulp off the host's result).
template <DataType W, typename V>
__device__ typename Elem<W>::S to_wire(V v) {
  if constexpr (std::is_same_v<V, double> && W == DataType::kF16) {
    return __double2half(v);
  } else if constexpr (std::is_same_v<V, double> && W == DataType::kBF16) {
    return __double2bfloat16(v);
  } else {
    return Elem<W>::store(static_cast<typename Elem<W>::C>(v));
  }
}

template <DataType D, DataType W>
__global__ void __launch_bounds__(kBlockThreads)
    pack_kernel(const PackEntry* entries, int n, uint64_t chunks,
                typename Elem<W>::S* __restrict__ fused, float* __restrict__ counts) {
  using V = typename Elem<D>::C;  // the tensor's compute type; carries share it
  using A = Elem<acc_of(D)>;
  if (counts && blockIdx.x == 0) {
    for (int k = static_cast<int>(threadIdx.x); k < n; k += static_cast<int>(blockDim.x)) {
      counts[k] = entries[k].count;
    }
  }
  const uint64_t chunk = blockIdx.x;
  if (chunk >= chunks) return;
  const PackEntry& e = entries[locate_part(entries, n, chunk)];
  const ChunkRange r = chunk_range(e, chunk);
  const auto* src = static_cast<const typename Elem<D>::S*>(e.src);
  const auto* carry = static_cast<const typename A::S*>(e.carry);
  typename Elem<W>::S* out = fused + e.offset;
  for (uint64_t base = r.begin + threadIdx.x; base < r.end; base += kBlockThreads * kUnroll) {
    V v[kUnroll];
#pragma unroll
    for (unsigned u = 0; u < kUnroll; ++u) {
      const uint64_t i = base + u * kBlockThreads;
      v[u] = V(0);
      if (i < r.end) {
        if (src) v[u] = Elem<D>::load(src[i]);
        if (carry) v[u] += static_cast<V>(A::load(carry[i]));
      }
    }
#pragma unroll
    for (unsigned u = 0; u < kUnroll; ++u) {
      const uint64_t i = base + u * kBlockThreads;
      if (i < r.end) out[i] = to_wire<W>(v[u]);
    }
  }
}

template <DataType D, DataType W>
__global__ void __launch_bounds__(kBlockThreads)
    unpack_kernel(const PackEntry* entries, int n, uint64_t chunks,
                  const typename Elem<W>::S* fused, const float* __restrict__ counts,
                  bool average, double divisor) {
  using V = typename Elem<D>::C;
  const uint64_t chunk = blockIdx.x;
  if (chunk >= chunks) return;
  const int k = locate_part(entries, n, chunk);
  const PackEntry& e = entries[k];
  const ChunkRange r = chunk_range(e, chunk);
  double d = divisor;
  if (counts) d = counts[k];
  const bool divide = average && d > 0;
  auto* dst = static_cast<typename Elem<D>::S*>(e.dst);
  auto* keep = static_cast<typename Elem<D>::S*>(e.keep);
  const typename Elem<W>::S* in = fused + e.offset;
  for (uint64_t base = r.begin + threadIdx.x; base < r.end; base += kBlockThreads * kUnroll) {
    typename Elem<D>::S v[kUnroll];
#pragma unroll
    for (unsigned u = 0; u < kUnroll; ++u) {
      const uint64_t i = base + u * kBlockThreads;
      if (i < r.end) {
        V x = static_cast<V>(Elem<W>::load(in[i]));
        if (divide) x = divide_by(x, d);
        v[u] = Elem<D>::store(x);
      }
    }
#pragma unroll
    for (unsigned u = 0; u < kUnroll; ++u) {
      const uint64_t i = base + u * kBlockThreads;
      if (i < r.end) {
        if (dst) dst[i] = v[u];
        if (keep) keep[i] = v[u];
      }
    }
  }
}

template <DataType D>
__global__ void accumulate_kernel(typename Elem<acc_of(D)>::S* acc,
                                  const typename Elem<D>::S* src, uint64_t elements) {
  using A = Elem<acc_of(D)>;
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < elements;
       i += uint64_t{gridDim.x} * blockDim.x) {
    acc[i] = A::store(A::load(acc[i]) + static_cast<typename A::C>(Elem<D>::load(src[i])));
  }
}

unsigned blocks_for(uint64_t chunks) {
  return static_cast<unsigned>(chunks > 0 ? chunks : 1);  // one block writes the count slots
}

// The launches report their own error: an earlier one left on this thread (by a call whose
// result was already handled or ignored) is cleared first.
void clear_last_error() { (void)cudaGetLastError(); }

template <DataType D, DataType W>
cudaError_t pack_as(const PackEntry* entries, int n, uint64_t chunks, void* fused, float* counts,
                    cudaStream_t stream) {
  clear_last_error();
  pack_kernel<D, W><<<blocks_for(chunks), kBlockThreads, 0, stream>>>(
      entries, n, chunks, static_cast<typename Elem<W>::S*>(fused), counts);
  return cudaGetLastError();
}

template <DataType D, DataType W>
cudaError_t unpack_as(const PackEntry* entries, int n, uint64_t chunks, const void* fused,
                      const float* counts, bool average, double divisor, cudaStream_t stream) {
  if (chunks == 0) return cudaSuccess;
  clear_last_error();
  unpack_kernel<D, W><<<blocks_for(chunks), kBlockThreads, 0, stream>>>(
      entries, n, chunks, static_cast<const typename Elem<W>::S*>(fused), counts, average,
      divisor);
  return cudaGetLastError();
}

// Calls fn.template operator()<D>() for dtype `t`.
template <typename Fn>
cudaError_t dispatch_dtype(DataType t, Fn&& fn) {
  using enum DataType;
  switch (t) {
    case kF16: return fn.template operator()<kF16>();
    case kBF16: return fn.template operator()<kBF16>();
    case kF32: return fn.template operator()<kF32>();
    case kF64: return fn.template operator()<kF64>();
    case kI32: return fn.template operator()<kI32>();
    case kI64: return fn.template operator()<kI64>();
    case kU8: return fn.template operator()<kU8>();
  }
  return cudaErrorInvalidValue;
}

// Calls fn.template operator()<D, W>() for a supported (dtype, wire) pair (pack_supported()):
// a floating dtype travels as its accumulate dtype, f16 or bf16; an integer one as itself.
template <typename Fn>
cudaError_t dispatch(DataType dtype, DataType wire, Fn&& fn) {
  return dispatch_dtype(dtype, [&]<DataType D>() {
    using enum DataType;
    if constexpr (is_floating(D)) {
      if (wire == acc_of(D)) return fn.template operator()<D, acc_of(D)>();
      if (wire == kF16) return fn.template operator()<D, kF16>();
      if (wire == kBF16) return fn.template operator()<D, kBF16>();
    } else {
      if (wire == D) return fn.template operator()<D, D>();
    }
    return cudaErrorInvalidValue;
  });
}

}  // namespace

bool pack_supported(DataType dtype, DataType wire) {
  if (!is_floating(dtype)) return wire == dtype && static_cast<int>(dtype) < kNumDataTypes;
  return wire == acc_of(dtype) || wire == DataType::kF16 || wire == DataType::kBF16;
}

cudaError_t launch_pack(const PackEntry* entries, int n, uint64_t chunks, DataType dtype,
                        DataType wire, void* fused, float* counts, cudaStream_t stream) {
  return dispatch(dtype, wire, [&]<DataType D, DataType W>() {
    return pack_as<D, W>(entries, n, chunks, fused, counts, stream);
  });
}

cudaError_t launch_unpack(const PackEntry* entries, int n, uint64_t chunks, DataType dtype,
                          DataType wire, const void* fused, const float* counts, bool average,
                          double divisor, cudaStream_t stream) {
  return dispatch(dtype, wire, [&]<DataType D, DataType W>() {
    return unpack_as<D, W>(entries, n, chunks, fused, counts, average, divisor, stream);
  });
}

cudaError_t launch_accumulate(void* acc, const void* src, uint64_t elements, DataType dtype,
                              cudaStream_t stream) {
  if (elements == 0) return cudaSuccess;
  const uint64_t want = (elements + kBlockThreads - 1) / kBlockThreads;
  const unsigned blocks = static_cast<unsigned>(want < 65535 ? want : 65535);
  return dispatch_dtype(dtype, [&]<DataType D>() {
    clear_last_error();
    accumulate_kernel<D><<<blocks, kBlockThreads, 0, stream>>>(
        static_cast<typename Elem<acc_of(D)>::S*>(acc),
        static_cast<const typename Elem<D>::S*>(src), elements);
    return cudaGetLastError();
  });
}

}  // namespace quorum::ops::nccl
