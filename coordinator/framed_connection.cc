#include "coordinator/framed_connection.h"

#include <algorithm>

namespace quorum::coord {

namespace {

// Payloads arrive in pieces of at most this much: a peer that announces a large frame and sends
// little of it costs little.
constexpr uint32_t kReadChunk = 64 << 10;

}  // namespace

void FramedConnection::start(OnMessage on_message, OnClose on_close, uint32_t max_payload) {
  max_payload_ = max_payload;
  on_message_ = std::move(on_message);
  on_close_ = std::move(on_close);
  socket_.set_option(tcp::no_delay(true));
  read_header();
}

std::string FramedConnection::peer() const {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  return ec ? std::string("unknown peer") : ep.address().to_string() + ":" + std::to_string(ep.port());
}

void FramedConnection::read_header() {
  auto self = shared_from_this();
  asio::async_read(socket_, asio::buffer(header_),
                   [this, self](const boost::system::error_code& ec, size_t) {
                     if (ec) return close(ec == asio::error::eof ? "peer closed the connection"
                                                                 : ec.message());
                     uint32_t bytes = 0;
                     uint16_t type = 0;
                     Status s = decode_header(header_, &bytes, &type);
                     if (!s.is_ok()) return close(s.message());
                     if (bytes > max_payload_) {
                       return close("control frame rejected: payload of " +
                                    std::to_string(bytes) + " bytes exceeds the " +
                                    std::to_string(max_payload_) + "-byte limit" +
                                    (max_payload_ < kMaxFramePayload ? " before a Hello" : ""));
                     }
                     read_payload(bytes, type);
                   });
}

void FramedConnection::read_payload(uint32_t bytes, uint16_t type) {
  payload_.clear();
  // Keep a large buffer of an earlier frame only while frames stay large.
  if (payload_.capacity() > 4 * static_cast<size_t>(std::max(bytes, kReadChunk))) {
    payload_.shrink_to_fit();
  }
  read_chunk(bytes, type);
}

void FramedConnection::read_chunk(uint32_t bytes, uint16_t type) {
  const size_t have = payload_.size();
  if (have == bytes) {
    Message m;
    Status s = decode_payload(type, payload_.data(), payload_.size(), &m);
    if (!s.is_ok()) return close(s.message());
    // A copy: the handler may rebind() the callbacks while it runs.
    if (auto handler = on_message_) handler(std::move(m));
    if (!closed_) read_header();
    return;
  }
  const size_t chunk = std::min<size_t>(bytes - have, kReadChunk);
  payload_.resize(have + chunk);
  auto self = shared_from_this();
  asio::async_read(socket_, asio::buffer(payload_.data() + have, chunk),
                   [this, self, bytes, type](const boost::system::error_code& ec, size_t) {
                     if (ec) return close("connection failed mid-frame: " + ec.message());
                     read_chunk(bytes, type);
                   });
}

void FramedConnection::send(std::vector<uint8_t> frame) {
  if (closed_) return;
  outbox_.push_back(std::move(frame));
  if (!writing_) write_next();
}

void FramedConnection::close_after_writes(const std::string& why) {
  if (closed_) return;
  if (!writing_ && outbox_.empty()) return close(why);
  close_after_ = why;
}

void FramedConnection::write_next() {
  if (outbox_.empty() || closed_) {
    writing_ = false;
    if (!closed_ && !close_after_.empty()) close(close_after_);
    return;
  }
  writing_ = true;
  auto self = shared_from_this();
  asio::async_write(socket_, asio::buffer(outbox_.front()),
                    [this, self](const boost::system::error_code& ec, size_t) {
                      if (ec) return close("write failed: " + ec.message());
                      outbox_.pop_front();
                      write_next();
                    });
}

void FramedConnection::close(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  if (on_close_) {
    auto cb = std::move(on_close_);
    cb(why);
  }
}

}  // namespace quorum::coord
