#include "coordinator/coordinator_server.h"

#include <algorithm>
#include <chrono>

#include "ops/clock.h"

namespace quorum::coord {
namespace {

// Compares without an early exit, so timing does not reveal how much of a token matched.
bool same_token(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

CoordinatorServer::CoordinatorServer(asio::io_context& io, ServiceOptions options,
                                     std::string token, LogFn warn)
    : io_(io),
      acceptor_(io),
      timer_(io),
      tick_(io),
      service_(options),
      token_(std::move(token)),
      warn_(std::move(warn)),
      size_(options.size),
      by_rank_(static_cast<size_t>(options.size)) {}

Status CoordinatorServer::listen(const std::string& address, uint16_t port) {
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(address, ec);
  if (ec) {
    return Status(StatusCode::kInvalidArgument,
                  "coordinator address '" + address + "' is not an IP address");
  }
  tcp::endpoint ep(ip, port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status(StatusCode::kInternal, "coordinator could not listen on " + address + ":" +
                                             std::to_string(port) + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
  accept_next();
  arm_tick();
  return Status::ok();
}

void CoordinatorServer::accept_next() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec) return;  // acceptor closed
    auto conn = std::make_shared<FramedConnection>(std::move(socket));
    const std::string peer = conn->peer();
    // Until the Hello arrives the connection is anonymous; an unauthenticated peer gets a few
    // seconds, then is dropped. Whatever closes it first (the deadline, a malformed frame, the
    // peer hanging up) is logged once, with its own reason.
    auto deadline = std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(10));
    auto admitted = std::make_shared<bool>(false);
    deadline->async_wait([conn](const boost::system::error_code& e) {
      if (!e) conn->close("no Hello within 10 s");
    });
    std::weak_ptr<FramedConnection> weak = conn;
    await_hello(conn, admitted);
    conn->start(
        [this, weak, admitted, deadline](Message m) {
          auto c = weak.lock();
          if (!c) return;
          if (!*admitted) {
            *admitted = true;
            deadline->cancel();
            return admit(c, m);
          }
        },
        [this, peer, admitted, deadline](const std::string& why) {
          if (*admitted) return;  // admit() logged its own reason
          *admitted = true;
          deadline->cancel();
          warn_("dropped control connection from " + peer + " before its Hello: " + why);
        },
        kMaxHelloPayload);
    accept_next();
  });
}

void CoordinatorServer::await_hello(const std::shared_ptr<FramedConnection>& conn,
                                    std::shared_ptr<bool> settled) {
  std::erase_if(awaiting_hello_, [](const Anonymous& a) { return *a.settled || a.conn.expired(); });
  awaiting_hello_.push_back({conn, std::move(settled)});
  // Peers that connect and never say Hello cannot pile up: past the cap the oldest goes.
  const size_t cap = std::max<size_t>(4, 2 * static_cast<size_t>(size_));
  while (awaiting_hello_.size() > cap) {
    Anonymous oldest = std::move(awaiting_hello_.front());
    awaiting_hello_.pop_front();
    if (auto c = oldest.conn.lock()) {
      c->close("more than " + std::to_string(cap) +
               " connections awaiting their Hello; the oldest is dropped");
    }
  }
}

void CoordinatorServer::admit(std::shared_ptr<FramedConnection> conn, const Message& first) {
  const Hello* hello = std::get_if<Hello>(&first);
  std::string problem;
  if (!hello) {
    problem = "first message was not Hello";
  } else if (!same_token(hello->token, token_)) {
    problem = "bad session token";
  } else if (hello->size != size_) {
    problem = "job size " + std::to_string(hello->size) + " differs from " + std::to_string(size_);
  } else if (hello->rank < 0 || hello->rank >= size_) {
    problem = "rank " + std::to_string(hello->rank) + " out of range";
  } else if (by_rank_[static_cast<size_t>(hello->rank)] ||
             service_.departed(hello->rank)) {
    problem = "rank " + std::to_string(hello->rank) + " is already connected";
  }
  if (!problem.empty()) {
    warn_("dropped control connection from " + conn->peer() + ": " + problem);
    conn->close(problem);
    return;
  }
  int rank = hello->rank;
  by_rank_[static_cast<size_t>(rank)] = conn;
  conn->set_max_payload(kMaxFramePayload);
  service_.heard(rank, Clock::now());
  conn->rebind([this, rank](Message m) { on_message(rank, std::move(m)); },
              [this, rank](const std::string& why) {
                by_rank_[static_cast<size_t>(rank)].reset();
                if (!service_.departed(rank) && !stopping_) {
                  warn_("lost control connection of rank " + std::to_string(rank) + ": " + why);
                  dispatch(service_.on_lost(rank, why, Clock::now()));
                }
              });
  conn->send(Welcome{ops::steady_now_ns()});
}

void CoordinatorServer::on_message(int rank, Message m) {
  auto now = Clock::now();
  service_.heard(rank, now);
  if (std::holds_alternative<Heartbeat>(m)) return;
  if (auto* ready = std::get_if<Ready>(&m)) {
    dispatch(service_.on_ready(rank, *ready, now));
  } else if (std::holds_alternative<Goodbye>(m)) {
    dispatch(service_.on_goodbye(rank, now));
  } else if (std::holds_alternative<Flush>(m)) {
    dispatch(service_.on_flush(rank, now));
  } else if (auto* exit = std::get_if<FastExit>(&m)) {
    dispatch(service_.on_fast_exit(rank, *exit, now));
  } else if (auto* report = std::get_if<FastReport>(&m)) {
    dispatch(service_.on_fast_report(rank, *report, now));
  } else {
    warn_("rank " + std::to_string(rank) + " sent an unexpected control message (type " +
          std::to_string(m.index()) + ")");
    if (auto c = by_rank_[static_cast<size_t>(rank)]) c->close("protocol violation");
  }
  waiting_.store(service_.waiting_fraction(), std::memory_order_relaxed);
  bounded_.store(service_.mode() == SyncMode::kBounded, std::memory_order_relaxed);
}

void CoordinatorServer::dispatch(std::vector<Outgoing> out) {
  for (Outgoing& o : out) {
    std::vector<uint8_t> frame = encode(o.message);
    if (o.rank == kAllRanks) {
      for (size_t r = 0; r < by_rank_.size(); ++r) {
        if (by_rank_[r] && !service_.departed(static_cast<int>(r))) by_rank_[r]->send(frame);
      }
    } else if (auto& c = by_rank_[static_cast<size_t>(o.rank)]) {
      c->send(std::move(frame));
    }
  }
  if (service_.all_departed()) {
    finished_ = true;
    timer_.cancel();
    return;
  }
  arm_timer();
}

void CoordinatorServer::arm_timer() {
  auto deadline = service_.deadline();
  if (!deadline) return;
  timer_.expires_at(*deadline);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // re-armed or cancelled
    dispatch(service_.on_timer(Clock::now()));
  });
}

void CoordinatorServer::arm_tick() {
  tick_.expires_after(std::chrono::seconds(1));
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || finished_) return;
    dispatch(service_.on_tick(Clock::now()));
    arm_tick();
  });
}

void CoordinatorServer::stop() {
  stopping_ = true;  // connections closed from here on are not lost ones
  tick_.cancel();
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  timer_.cancel();
  // Goodbye acknowledgements and last plans still queued go out before the sockets close.
  for (auto& c : by_rank_) {
    if (c) c->close_after_writes("coordinator stopped");
  }
}

}  // namespace quorum::coord
