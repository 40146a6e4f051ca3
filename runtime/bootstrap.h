// Bootstrap of the control plane under mpiexec: rank 0 publishes where its coordinator listens
// (host, port), a random session token and the data-path settings every rank must share to
// every rank with one MPI_Bcast. A failure on rank 0
// travels in the same broadcast, so every rank fails init together instead of hanging.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string>

#include "quorum/types.h"

namespace quorum {

struct Rendezvous {
  std::string host;       // the address other ranks dial
  std::string root_host;  // rank 0's host name
  uint16_t port = 0;
  std::string token;
  // Rank 0's job-wide settings, as job_settings_text() writes them (runtime/config.h).
  std::string job_settings;
};

// 32 random bytes from the OS, hex-encoded.
std::string make_session_token();

// Collective over `comm`. On rank 0, `mine` is what to publish and `root_status` whether rank 0
// could set up its coordinator; on the others both are ignored. Every rank gets the rendezvous
// and returns rank 0's status.
Status exchange_rendezvous(MPI_Comm comm, const Rendezvous& mine, const Status& root_status,
                           Rendezvous* out);

// Where rank 0's coordinator listens and what it publishes: `configured` when set (0.0.0.0
// publishes the host name); loopback when the whole job is on this host; otherwise this host's
// first non-loopback IPv4 address (from its name). Never all interfaces by default.
Status choose_control_address(const std::string& configured, bool single_host,
                              std::string* bind_address, std::string* published);

// A public name for the run derived from its secret token (FNV-1a, hex): equal on every rank.
std::string run_id_from_token(const std::string& token);

// This machine's host name.
std::string this_host();

}  // namespace quorum
