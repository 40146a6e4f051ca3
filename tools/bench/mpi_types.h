// mpi_types.h — raw MPI's names for quorum's dtypes and for Sum, so the baselines move the same
// bytes with the same arithmetic. f16 and bf16 travel as MPI_UINT16_T with user-defined sum ops
// that widen to float, add and round (MPI has no standard half types).
#pragma once

#include <mpi.h>

#include "quorum/types.h"

namespace quorum::bench {

// Creates the half-precision sum ops; construct after MPI_Init and destroy before
// MPI_Finalize. Any thread may use a constructed object (it is read-only).
class MpiTypes {
 public:
  MpiTypes();
  ~MpiTypes();
  MpiTypes(const MpiTypes&) = delete;
  MpiTypes& operator=(const MpiTypes&) = delete;

  MPI_Datatype datatype(DataType t) const;
  MPI_Op sum(DataType t) const;

 private:
  MPI_Op f16_sum_ = MPI_OP_NULL;
  MPI_Op bf16_sum_ = MPI_OP_NULL;
};

}  // namespace quorum::bench
