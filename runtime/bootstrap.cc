#include "runtime/bootstrap.h"

#include <arpa/inet.h>
#include <netdb.h>
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
  char root_host[256];
  char error[512];
  char job_settings[1024];
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

Status choose_control_address(const std::string& configured, bool single_host,
                              std::string* bind_address, std::string* published) {
  if (!configured.empty()) {
    *bind_address = configured;
    *published = configured == "0.0.0.0" ? this_host() : configured;
    return Status::ok();
  }
  if (single_host) {
    *bind_address = *published = "127.0.0.1";
    return Status::ok();
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string host = this_host();
  if (getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || !found) {
    return Status(StatusCode::kInternal, "cannot resolve this host's name '" + host +
                                             "' to an address; set QUORUM_CONTROL_ADDR");
  }
  std::string fallback;
  for (addrinfo* a = found; a; a = a->ai_next) {
    char text[INET_ADDRSTRLEN];
    auto* sin = reinterpret_cast<sockaddr_in*>(a->ai_addr);
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
    bool loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    if (!loopback) {
      *bind_address = *published = text;
      freeaddrinfo(found);
      return Status::ok();
    }
    if (fallback.empty()) fallback = text;
  }
  freeaddrinfo(found);
  return Status(StatusCode::kInternal,
                "this host's name '" + host + "' resolves only to a loopback address (" + fallback +
                    ") but the job spans several hosts; set QUORUM_CONTROL_ADDR");
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
    std::strncpy(w.root_host, this_host().c_str(), sizeof(w.root_host) - 1);
    std::strncpy(w.error, root_status.message().c_str(), sizeof(w.error) - 1);
    std::strncpy(w.job_settings, mine.job_settings.c_str(), sizeof(w.job_settings) - 1);
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
  out->root_host = w.root_host;
  out->job_settings = w.job_settings;
  return Status::ok();
}

}  // namespace quorum
