#include "coordinator/control_client.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "ops/clock.h"

namespace quorum::coord {

Status ControlClient::connect(const std::string& host, uint16_t port, const Hello& hello,
                              std::chrono::steady_clock::duration timeout, Welcome* welcome,
                              int64_t* rtt_midpoint_ns) {
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
  int64_t sent_at = ops::steady_now_ns();
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
  int64_t received_at = ops::steady_now_ns();
  Message m;
  QUORUM_RETURN_IF_ERROR(decode_payload(type, payload.data(), payload.size(), &m));
  auto* w = std::get_if<Welcome>(&m);
  if (!w) return Status(StatusCode::kInternal, "coordinator answered Hello with a non-Welcome");
  *welcome = *w;
  if (rtt_midpoint_ns) *rtt_midpoint_ns = sent_at + (received_at - sent_at) / 2;
  bytes_sent_ += frame.size();
  socket_->non_blocking(true);
  return Status::ok();
}

int ControlClient::fd() const { return socket_ ? socket_->native_handle() : -1; }

Status ControlClient::send(const Message& m) {
  if (!socket_) return Status(StatusCode::kAborted, "control connection is closed");
  std::vector<uint8_t> frame = encode(m);
  size_t done = 0;
  while (done < frame.size()) {
    ssize_t n = ::send(fd(), frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      pollfd p{fd(), POLLOUT, 0};
      ::poll(&p, 1, 100);
    } else {
      return Status(StatusCode::kAborted,
                    std::string("control connection write failed: ") + std::strerror(errno));
    }
  }
  bytes_sent_.fetch_add(frame.size(), std::memory_order_relaxed);
  return Status::ok();
}

Status ControlClient::receive(std::vector<Message>* out) {
  if (!socket_) return Status(StatusCode::kAborted, "control connection is closed");
  uint8_t chunk[64 * 1024];
  Status ended;  // an end of the connection is reported after the frames read before it
  for (;;) {
    ssize_t n = ::recv(fd(), chunk, sizeof(chunk), 0);
    if (n > 0) {
      inbuf_.insert(inbuf_.end(), chunk, chunk + n);
      continue;
    }
    if (n == 0) {
      ended = Status(StatusCode::kAborted, "the coordinator closed the connection");
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    ended = Status(StatusCode::kAborted,
                   std::string("control connection read failed: ") + std::strerror(errno));
    break;
  }
  size_t pos = 0;
  while (inbuf_.size() - pos >= kFrameHeaderBytes) {
    uint32_t len = 0;
    uint16_t type = 0;
    QUORUM_RETURN_IF_ERROR(decode_header(inbuf_.data() + pos, &len, &type));
    if (inbuf_.size() - pos - kFrameHeaderBytes < len) break;
    Message m;
    QUORUM_RETURN_IF_ERROR(decode_payload(type, inbuf_.data() + pos + kFrameHeaderBytes, len, &m));
    out->push_back(std::move(m));
    pos += kFrameHeaderBytes + len;
  }
  inbuf_.erase(inbuf_.begin(), inbuf_.begin() + static_cast<std::ptrdiff_t>(pos));
  return ended;
}

void ControlClient::close() {
  if (!socket_) return;
  boost::system::error_code ignored;
  socket_->shutdown(tcp::socket::shutdown_both, ignored);
  socket_->close(ignored);
  socket_.reset();
}

}  // namespace quorum::coord
