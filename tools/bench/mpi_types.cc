#include "tools/bench/mpi_types.h"

#include <cstdint>
#include <cstring>

#include "ops/half.h"

namespace quorum::bench {
namespace {

template <float (*ToFloat)(uint16_t), uint16_t (*FromFloat)(float)>
void half_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = FromFloat(ToFloat(a[i]) + ToFloat(b[i]));
}

}  // namespace

MpiTypes::MpiTypes() {
  MPI_Op_create(&half_sum<ops::f16_to_float, ops::float_to_f16>, 1, &f16_sum_);
  MPI_Op_create(&half_sum<ops::bf16_to_float, ops::float_to_bf16>, 1, &bf16_sum_);
}

MpiTypes::~MpiTypes() {
  if (f16_sum_ != MPI_OP_NULL) MPI_Op_free(&f16_sum_);
  if (bf16_sum_ != MPI_OP_NULL) MPI_Op_free(&bf16_sum_);
}

MPI_Datatype MpiTypes::datatype(DataType t) const {
  switch (t) {
    case DataType::kF16:
    case DataType::kBF16:
      return MPI_UINT16_T;
    case DataType::kF32:
      return MPI_FLOAT;
    case DataType::kF64:
      return MPI_DOUBLE;
    case DataType::kI32:
      return MPI_INT32_T;
    case DataType::kI64:
      return MPI_INT64_T;
    case DataType::kU8:
      return MPI_UINT8_T;
  }
  return MPI_DATATYPE_NULL;
}

MPI_Op MpiTypes::sum(DataType t) const {
  switch (t) {
    case DataType::kF16:
      return f16_sum_;
    case DataType::kBF16:
      return bf16_sum_;
    default:
      return MPI_SUM;
  }
}

}  // namespace quorum::bench
