// How a job's ranks sit on hosts, as communicators: the ranks of this host, and the ranks that
// meet across hosts. Built once at init (collective over the data communicator) from
// MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), or from any grouping a caller passes (tests group
// ranks of one machine into pretend hosts to exercise the algorithm without namespaces).
#pragma once

#include <mpi.h>

#include <memory>

#include "quorum/types.h"

namespace quorum::ops {

class Hierarchy {
 public:
  // Collective over `comm`. `host` holds the calling rank's host-mates (a communicator split
  // from `comm`); the Hierarchy duplicates it and does not keep `host` itself. Hosts are
  // numbered in the order of their lowest rank in `comm`.
  static Status create(MPI_Comm comm, MPI_Comm host, std::unique_ptr<Hierarchy>* out);
  // The same, grouping ranks by MPI_COMM_TYPE_SHARED (the real hosts).
  static Status from_shared_memory(MPI_Comm comm, std::unique_ptr<Hierarchy>* out);
  ~Hierarchy();
  Hierarchy(const Hierarchy&) = delete;
  Hierarchy& operator=(const Hierarchy&) = delete;

  int world_size() const { return world_size_; }
  int hosts() const { return hosts_; }
  int host_index() const { return host_index_; }
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  // The most ranks any host has.
  int max_local_size() const { return max_local_size_; }
  // Every host has the same number of ranks.
  bool uniform() const { return uniform_; }

  // This host's ranks, in the order of their rank in `comm`.
  MPI_Comm local() const { return local_; }
  // Uniform hosts: the ranks with this rank's local rank, one per host, in host order. Uneven
  // hosts: the hosts' leaders (local rank 0), in host order; MPI_COMM_NULL on other ranks.
  MPI_Comm cross() const { return cross_; }

 private:
  Hierarchy() = default;
  int world_size_ = 1, hosts_ = 1, host_index_ = 0, local_rank_ = 0, local_size_ = 1;
  int max_local_size_ = 1;
  bool uniform_ = true;
  MPI_Comm local_ = MPI_COMM_NULL;
  MPI_Comm cross_ = MPI_COMM_NULL;
};

}  // namespace quorum::ops
