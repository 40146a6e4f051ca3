#include "coordinator/control_client.h"

#include <thread>

namespace quorum::coord {

Status ControlClient::connect(const std::string& host, uint16_t port, const Hello& hello,
                              std::chrono::steady_clock::duration timeout, Welcome* welcome) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  boost::system::error_code ec;
  tcp::resolver resolver(io_);
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) {
    return Status(StatusCode::kInternal,
                  "cannot resolve coordinator host '" + host + "': " + ec.message());
  }
  socket_ = std::make_unique<tcp::socket>(io_);
  // Rank 0 publishes its endpoint before other ranks connect, but a loaded machine may be slow
  // to accept: retry until the deadline.
  for (;;) {
    asio::connect(*socket_, endpoints, ec);
    if (!ec) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return Status(StatusCode::kAborted, "cannot connect to the coordinator at " + host + ":" +
                                              std::to_string(port) + ": " + ec.message());
    }
    socket_->close();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  socket_->set_option(tcp::no_delay(true));
  std::vector<uint8_t> frame = encode(hello);
  asio::write(*socket_, asio::buffer(frame), ec);
  uint8_t header[kFrameHeaderBytes];
  if (!ec) asio::read(*socket_, asio::buffer(header), ec);
  if (ec) {
    return Status(StatusCode::kAborted,
                  "coordinator at " + host + ":" + std::to_string(port) +
                      " refused the handshake (" + ec.message() + ")");
  }
  uint32_t len = 0;
  uint16_t type = 0;
  QUORUM_RETURN_IF_ERROR(decode_header(header, &len, &type));
  std::vector<uint8_t> payload(len);
  asio::read(*socket_, asio::buffer(payload), ec);
  if (ec) return Status(StatusCode::kAborted, "coordinator handshake failed: " + ec.message());
  Message m;
  QUORUM_RETURN_IF_ERROR(decode_payload(type, payload.data(), payload.size(), &m));
  auto* w = std::get_if<Welcome>(&m);
  if (!w) return Status(StatusCode::kInternal, "coordinator answered Hello with a non-Welcome");
  *welcome = *w;
  bytes_sent_ += frame.size();
  return Status::ok();
}

void ControlClient::start(FramedConnection::OnMessage on_message,
                          FramedConnection::OnClose on_close) {
  conn_ = std::make_shared<FramedConnection>(std::move(*socket_));
  socket_.reset();
  asio::post(io_, [c = conn_, m = std::move(on_message), cl = std::move(on_close)]() mutable {
    c->start(std::move(m), std::move(cl));
  });
}

void ControlClient::send(const Message& m) {
  std::vector<uint8_t> frame = encode(m);
  bytes_sent_.fetch_add(frame.size(), std::memory_order_relaxed);
  asio::post(io_, [c = conn_, f = std::move(frame)]() mutable { c->send(std::move(f)); });
}

void ControlClient::close() {
  if (conn_) asio::post(io_, [c = conn_] { c->close("closed by this rank"); });
}

}  // namespace quorum::coord
