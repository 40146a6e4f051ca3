// One TCP connection carrying framed control messages in both directions. Reads run as an
// async loop that decodes each frame and hands it to the message callback; a malformed frame, or
// one announcing more than the connection's payload limit, closes the connection (with the
// reason). Payloads are read in chunks, so memory grows only with bytes that actually arrive. Writes are queued and sent in
// order. Every method runs on the io_context's thread; the object keeps itself alive while
// operations are pending (shared_from_this).
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/asio.h"
#include "coordinator/messages.h"

namespace quorum::coord {

class FramedConnection : public std::enable_shared_from_this<FramedConnection> {
 public:
  using OnMessage = std::function<void(Message)>;
  using OnClose = std::function<void(const std::string& why)>;

  explicit FramedConnection(tcp::socket socket) : socket_(std::move(socket)) {}

  // `max_payload`: the largest frame payload accepted (e.g. a Hello's until the peer is admitted).
  void start(OnMessage on_message, OnClose on_close, uint32_t max_payload = kMaxFramePayload);
  void set_max_payload(uint32_t bytes) { max_payload_ = bytes; }
  // Replaces the callbacks without starting another read (e.g. once a peer is authenticated).
  void rebind(OnMessage on_message, OnClose on_close) {
    on_message_ = std::move(on_message);
    on_close_ = std::move(on_close);
  }
  void send(std::vector<uint8_t> frame);
  void send(const Message& m) { send(encode(m)); }
  // Closes once; the close callback runs once with `why`.
  void close(const std::string& why);
  // Closes once every queued frame has been written (at once if none is).
  void close_after_writes(const std::string& why);
  bool open() const { return !closed_; }
  std::string peer() const;

 private:
  void read_header();
  void read_payload(uint32_t bytes, uint16_t type);
  void read_chunk(uint32_t bytes, uint16_t type);
  void write_next();

  tcp::socket socket_;
  OnMessage on_message_;
  OnClose on_close_;
  uint8_t header_[kFrameHeaderBytes];
  std::vector<uint8_t> payload_;
  uint32_t max_payload_ = kMaxFramePayload;
  std::deque<std::vector<uint8_t>> outbox_;
  bool writing_ = false;
  bool closed_ = false;
  std::string close_after_;  // set: close when the outbox drains
};

}  // namespace quorum::coord
