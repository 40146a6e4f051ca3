// Bootstrap of the control plane under mpiexec: rank 0 publishes where its coordinator listens
// (host, port) and a random session token to every rank with one MPI_Bcast. A failure on rank 0
// travels in the same broadcast, so every rank fails init together instead of hanging.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string>

#include "quorum/types.h"

namespace quorum {

struct Rendezvous {
  std::string host;
  uint16_t port = 0;
  std::string token;
};

// 32 random bytes from the OS, hex-encoded.
std::string make_session_token();

// Collective over `comm`. On rank 0, `mine` is what to publish and `root_status` whether rank 0
// could set up its coordinator; on the others both are ignored. Every rank gets the rendezvous
// and returns rank 0's status.
Status exchange_rendezvous(MPI_Comm comm, const Rendezvous& mine, const Status& root_status,
                           Rendezvous* out);

// The address a rank should dial to reach `published_host`: loopback when it is this host.
std::string dial_host(const std::string& published_host);

// A public name for the run derived from its secret token (FNV-1a, hex): equal on every rank.
std::string run_id_from_token(const std::string& token);

// This machine's host name.
std::string this_host();

}  // namespace quorum
