// A rank's end of the control plane: one TCP connection to the coordinator on rank 0, used
// synchronously by a single thread (the engine). connect() blocks (retrying until its deadline)
// through the Hello/Welcome handshake; afterwards the socket is non-blocking: the owner polls
// fd() for readability together with its own wake-ups, calls receive() to collect whole frames,
// and send() writes a frame completely (waiting for the socket if its buffer is full).
// Not thread-safe: one owner thread after connect(). bytes_sent() may be read from anywhere.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/asio.h"
#include "coordinator/messages.h"

namespace quorum::coord {

class ControlClient {
 public:
  ControlClient() = default;

  // `rtt_midpoint_ns` (optional) receives the local steady-clock time halfway between sending
  // Hello and receiving Welcome, for clock-offset estimates.
  Status connect(const std::string& host, uint16_t port, const Hello& hello,
                 std::chrono::steady_clock::duration timeout, Welcome* welcome,
                 int64_t* rtt_midpoint_ns = nullptr);

  int fd() const;
  Status send(const Message& m);
  // Appends every complete message that has arrived; a closed or corrupt connection is an error.
  Status receive(std::vector<Message>* out);
  void close();

  uint64_t bytes_sent() const { return bytes_sent_.load(std::memory_order_relaxed); }

 private:
  asio::io_context io_;  // only for resolve/connect; no async operations run on it
  std::unique_ptr<tcp::socket> socket_;
  std::vector<uint8_t> inbuf_;
  std::atomic<uint64_t> bytes_sent_{0};
};

}  // namespace quorum::coord
