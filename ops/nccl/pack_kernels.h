// Host entry points of the CUDA pack/unpack kernels (pack_kernels.cu). Each call is one kernel
// launch on `stream`, asynchronous: it returns once the launch is queued, and the caller observes
// completion through an event on that stream, and returns the launch's own error (an earlier
// error left on the calling thread is cleared first). Tables and buffers are device memory on
// the stream's device. Any host thread; the launches themselves are thread-safe.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ops/nccl/pack_layout.h"
#include "quorum/types.h"

namespace quorum::ops::nccl {

// The dtype rules (accumulate dtype, wire dtype under compression) are
// ops::device_accumulate_dtype() and ops::device_wire_dtype_for() in device_backend.h.

// True when the kernels handle tensor dtype `dtype` on wire dtype `wire`.
bool pack_supported(DataType dtype, DataType wire);

// One launch: for every part k of `entries` (n parts, `chunks` = lay_out()'s chunk total),
// fused[offset + i] = wire(src[i] + carry[i]) (a null src is zeros, a null carry adds nothing);
// when `counts` is not null, counts[k] = entries[k].count.
cudaError_t launch_pack(const PackEntry* entries, int n, uint64_t chunks, DataType dtype,
                        DataType wire, void* fused, float* counts, cudaStream_t stream);

// One launch: for every part k, r = fused[offset + i] (as the tensor dtype's compute type);
// with `average`, r /= counts[k] when `counts` is not null and counts[k] > 0, else r /= divisor
// (a true divide for floats; integers truncate toward zero, as ops::divide does). dst[i] = r
// and keep[i] = r where those are not null. `fused` may alias dst only when wire == dtype.
cudaError_t launch_unpack(const PackEntry* entries, int n, uint64_t chunks, DataType dtype,
                          DataType wire, const void* fused, const float* counts, bool average,
                          double divisor, cudaStream_t stream);

// One launch: acc[i] += src[i] for i < elements; `acc` in accumulate_dtype(dtype), `src` in
// `dtype` (a late gradient joining a carry).
cudaError_t launch_accumulate(void* acc, const void* src, uint64_t elements, DataType dtype,
                              cudaStream_t stream);

}  // namespace quorum::ops::nccl
