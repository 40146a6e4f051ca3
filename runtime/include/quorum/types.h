// quorum/types.h — the vocabulary every layer of quorum speaks: data types, reduction ops,
// devices, tensor views and Status. Header-only, no dependencies beyond the standard library;
// included by quorum/quorum.h, which is the header applications use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if defined(QUORUM_BUILDING_LIBRARY)
#define QUORUM_EXPORT __attribute__((visibility("default")))
#else
#define QUORUM_EXPORT
#endif

namespace quorum {

enum class DataType : uint8_t { kF16 = 0, kBF16, kF32, kF64, kI32, kI64, kU8 };
inline constexpr int kNumDataTypes = 7;

enum class ReduceOp : uint8_t { kSum = 0, kAverage, kMin, kMax, kProduct };
inline constexpr int kNumReduceOps = 5;

// Bytes per element; 0 for a value outside the enum.
constexpr size_t dtype_size(DataType t) {
  switch (t) {
    case DataType::kU8: return 1;
    case DataType::kF16:
    case DataType::kBF16: return 2;
    case DataType::kF32:
    case DataType::kI32: return 4;
    case DataType::kF64:
    case DataType::kI64: return 8;
  }
  return 0;
}

constexpr std::string_view dtype_name(DataType t) {
  switch (t) {
    case DataType::kF16: return "f16";
    case DataType::kBF16: return "bf16";
    case DataType::kF32: return "f32";
    case DataType::kF64: return "f64";
    case DataType::kI32: return "i32";
    case DataType::kI64: return "i64";
    case DataType::kU8: return "u8";
  }
  return "invalid-dtype";
}

constexpr std::string_view op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kAverage: return "average";
    case ReduceOp::kMin: return "min";
    case ReduceOp::kMax: return "max";
    case ReduceOp::kProduct: return "product";
  }
  return "invalid-op";
}

// Where a tensor's memory lives. Host memory goes through MPI; CUDA memory through NCCL.
struct Device {
  enum class Kind : uint8_t { kHost = 0, kCuda = 1 };
  Kind kind = Kind::kHost;
  int ordinal = 0;  // CUDA device ordinal; ignored for host.

  static Device host() { return {}; }
  static Device cuda(int ordinal) { return {Kind::kCuda, ordinal}; }
  bool operator==(const Device&) const = default;
};

// A non-owning view of a dense, row-major tensor. The caller owns the memory and keeps it valid
// and untouched (for inputs: unmodified; for outputs: unread) until the operation completes.
//
// CUDA tensors (device.kind == kCuda): `data` is device memory on that ordinal, and quorum works
// on its own CUDA stream. `cuda_ready_event`, when not null, is a cudaEvent_t the caller
// recorded after the work that produces the input: quorum's stream waits for it (it must stay
// valid until the operation completes). Null means the data is ready already (for example after
// a stream synchronise). When the handle completes, outputs are written: no further
// synchronisation is needed. Ignored for host tensors.
struct Tensor {
  void* data = nullptr;
  DataType dtype = DataType::kF32;
  std::vector<int64_t> shape;
  Device device;
  void* cuda_ready_event = nullptr;
};

enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,   // bad input from this caller: null pointer, bad size, bad dtype, ...
  kMismatch,          // ranks disagree about a tensor (shape, dtype, op, root, device)
  kFailedPrecondition,  // wrong lifecycle state: not initialised, shut down, duplicate name
  kAborted,           // the job or a peer went away, or shutdown with pending work
  kInternal,          // a broken invariant or a failure of MPI/NCCL/the network
  kUnimplemented,     // a valid request this build cannot serve (e.g. CUDA without NCCL)
};

// An error as a value. OK carries no allocation.
class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return {}; }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const { return is_ok() ? std::string("OK") : message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define QUORUM_RETURN_IF_ERROR(expr)            \
  do {                                          \
    ::quorum::Status quorum_status_ = (expr);   \
    if (!quorum_status_.is_ok()) return quorum_status_; \
  } while (0)

}  // namespace quorum
