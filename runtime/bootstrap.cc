#include "runtime/bootstrap.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>

namespace quorum {
namespace {

struct Wire {
  int32_t ok;
  uint16_t port;
  char host[256];
  char token[80];
  char error[512];
};

}  // namespace

std::string make_session_token() {
  std::random_device rd;  // /dev/urandom on Linux
  static constexpr char kHex[] = "0123456789abcdef";
  std::string t;
  for (int i = 0; i < 32; ++i) {
    unsigned b = rd() & 0xffu;
    t += kHex[b >> 4];
    t += kHex[b & 15u];
  }
  return t;
}

std::string run_id_from_token(const std::string& token) {
  uint64_t h = 1469598103934665603ull;
  for (char c : "quorum-run:" + token) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string this_host() {
  char buf[256] = {};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

std::string dial_host(const std::string& published_host) {
  return published_host == this_host() ? "127.0.0.1" : published_host;
}

Status exchange_rendezvous(MPI_Comm comm, const Rendezvous& mine, const Status& root_status,
                           Rendezvous* out) {
  Wire w{};
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  if (rank == 0) {
    w.ok = root_status.is_ok() ? 1 : 0;
    w.port = mine.port;
    std::strncpy(w.host, mine.host.c_str(), sizeof(w.host) - 1);
    std::strncpy(w.token, mine.token.c_str(), sizeof(w.token) - 1);
    std::strncpy(w.error, root_status.message().c_str(), sizeof(w.error) - 1);
  }
  int err = MPI_Bcast(&w, sizeof(w), MPI_BYTE, 0, comm);
  if (err != MPI_SUCCESS) {
    return Status(StatusCode::kInternal, "MPI_Bcast of the coordinator's address failed");
  }
  if (!w.ok) {
    return Status(StatusCode::kInternal,
                  std::string("rank 0 could not start the coordinator: ") + w.error);
  }
  out->host = w.host;
  out->port = w.port;
  out->token = w.token;
  return Status::ok();
}

}  // namespace quorum
