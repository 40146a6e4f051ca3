#include "ops/hierarchy.h"

#include "ops/mpi_backend.h"

namespace quorum::ops {

Status Hierarchy::create(MPI_Comm comm, MPI_Comm host, std::unique_ptr<Hierarchy>* out) {
  std::unique_ptr<Hierarchy> h(new Hierarchy());
  int rank = 0;
  QUORUM_RETURN_IF_ERROR(mpi_status(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank"));
  QUORUM_RETURN_IF_ERROR(mpi_status(MPI_Comm_size(comm, &h->world_size_), "MPI_Comm_size"));
  QUORUM_RETURN_IF_ERROR(mpi_status(MPI_Comm_dup(host, &h->local_), "MPI_Comm_dup"));
  MPI_Comm_set_errhandler(h->local_, MPI_ERRORS_RETURN);
  QUORUM_RETURN_IF_ERROR(mpi_status(MPI_Comm_rank(h->local_, &h->local_rank_), "MPI_Comm_rank"));
  QUORUM_RETURN_IF_ERROR(mpi_status(MPI_Comm_size(h->local_, &h->local_size_), "MPI_Comm_size"));

  // The leaders, one per host, ordered by rank: a leader's rank among them is its host's index.
  MPI_Comm leaders = MPI_COMM_NULL;
  QUORUM_RETURN_IF_ERROR(mpi_status(
      MPI_Comm_split(comm, h->local_rank_ == 0 ? 0 : MPI_UNDEFINED, rank, &leaders),
      "MPI_Comm_split"));
  int shape[2] = {0, 0};  // host index, host count
  if (leaders != MPI_COMM_NULL) {
    MPI_Comm_rank(leaders, &shape[0]);
    MPI_Comm_size(leaders, &shape[1]);
  }
  QUORUM_RETURN_IF_ERROR(
      mpi_status(MPI_Bcast(shape, 2, MPI_INT, 0, h->local_), "MPI_Bcast of the host index"));
  h->host_index_ = shape[0];
  h->hosts_ = shape[1];
  int sizes[2] = {h->local_size_, -h->local_size_};  // max, -min
  QUORUM_RETURN_IF_ERROR(mpi_status(
      MPI_Allreduce(MPI_IN_PLACE, sizes, 2, MPI_INT, MPI_MAX, comm), "MPI_Allreduce of host sizes"));
  h->max_local_size_ = sizes[0];
  h->uniform_ = sizes[0] == -sizes[1];

  if (h->uniform_) {
    if (leaders != MPI_COMM_NULL) MPI_Comm_free(&leaders);
    QUORUM_RETURN_IF_ERROR(mpi_status(
        MPI_Comm_split(comm, h->local_rank_, h->host_index_, &h->cross_), "MPI_Comm_split"));
  } else {
    h->cross_ = leaders;
  }
  if (h->cross_ != MPI_COMM_NULL) MPI_Comm_set_errhandler(h->cross_, MPI_ERRORS_RETURN);
  *out = std::move(h);
  return Status::ok();
}

Status Hierarchy::from_shared_memory(MPI_Comm comm, std::unique_ptr<Hierarchy>* out) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm host = MPI_COMM_NULL;
  QUORUM_RETURN_IF_ERROR(mpi_status(
      MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &host),
      "MPI_Comm_split_type"));
  Status s = create(comm, host, out);
  MPI_Comm_free(&host);
  return s;
}

Hierarchy::~Hierarchy() {
  if (cross_ != MPI_COMM_NULL) MPI_Comm_free(&cross_);
  if (local_ != MPI_COMM_NULL) MPI_Comm_free(&local_);
}

}  // namespace quorum::ops
