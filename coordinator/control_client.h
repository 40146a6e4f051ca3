// A rank's end of the control plane: a TCP connection to the coordinator on rank 0.
// connect() runs on the caller's thread (blocking, with retries until the deadline) and
// performs the Hello/Welcome handshake; afterwards reads are delivered on the io_context's
// thread to the message callback, and send() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "coordinator/asio.h"
#include "coordinator/framed_connection.h"

namespace quorum::coord {

class ControlClient {
 public:
  explicit ControlClient(asio::io_context& io) : io_(io) {}

  Status connect(const std::string& host, uint16_t port, const Hello& hello,
                 std::chrono::steady_clock::duration timeout, Welcome* welcome);

  // Begins delivering messages (io thread). `on_close` runs once when the connection ends.
  void start(FramedConnection::OnMessage on_message, FramedConnection::OnClose on_close);

  // Thread-safe: encodes here, queues the frame on the io thread.
  void send(const Message& m);
  void close();

  uint64_t bytes_sent() const { return bytes_sent_.load(std::memory_order_relaxed); }

 private:
  asio::io_context& io_;
  std::shared_ptr<FramedConnection> conn_;
  std::unique_ptr<tcp::socket> socket_;
  std::atomic<uint64_t> bytes_sent_{0};
};

}  // namespace quorum::coord
