// The coordinator's TCP front end on rank 0. Accepts control connections, admits a connection
// only after a Hello that carries the session token, a rank in range, the right job size and a
// rank not already connected (anything else is logged and dropped), then feeds the service and
// fans its output out. Before its Hello a connection may send no frame larger than a Hello, at
// most max(4, 2 x job size) connections wait for theirs (the oldest is dropped past that) and
// each gets 10 s: an unauthenticated peer costs rank 0 a few hundred bytes. Lives on one io_context thread; construct and listen() from any thread
// before that thread runs, read finished() from any thread.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/asio.h"
#include "coordinator/coordinator_service.h"
#include "coordinator/framed_connection.h"

namespace quorum::coord {

class CoordinatorServer {
 public:
  using LogFn = std::function<void(const std::string&)>;

  CoordinatorServer(asio::io_context& io, ServiceOptions options, std::string token, LogFn warn);

  // Binds `address`:`port` (port 0 = any free port) and starts accepting.
  Status listen(const std::string& address, uint16_t port);
  uint16_t port() const { return port_; }

  // True once every rank has said goodbye or dropped.
  bool finished() const { return finished_.load(); }

  // The sync policy's straggler waiting share of step time, as of the last message; any thread.
  double waiting_fraction() const { return waiting_.load(std::memory_order_relaxed); }
  // Whether the sync policy runs bounded rounds now, as of the last message; any thread.
  bool bounded() const { return bounded_.load(std::memory_order_relaxed); }

  // Closes the acceptor and every connection (io thread).
  void stop();

  // Feeds a timed collective to the cost model (io thread).
  void observe(Algorithm algorithm, size_t bytes, double seconds, double intra_seconds = 0,
               double inter_seconds = 0) {
    service_.observe(algorithm, bytes, seconds, intra_seconds, inter_seconds);
  }

 private:
  void accept_next();
  // Tracks a connection until its Hello settles it (admitted or dropped); `settled` is shared
  // with the connection's callbacks.
  void await_hello(const std::shared_ptr<FramedConnection>& conn, std::shared_ptr<bool> settled);
  void admit(std::shared_ptr<FramedConnection> conn, const Message& first);
  void on_message(int rank, Message m);
  void dispatch(std::vector<Outgoing> out);
  void arm_timer();
  void arm_tick();

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  asio::steady_timer timer_;
  asio::steady_timer tick_;  // once a second: the stall inspector
  CoordinatorService service_;
  std::string token_;
  LogFn warn_;
  int size_;
  uint16_t port_ = 0;
  std::vector<std::shared_ptr<FramedConnection>> by_rank_;
  struct Anonymous {
    std::weak_ptr<FramedConnection> conn;
    std::shared_ptr<bool> settled;
  };
  std::deque<Anonymous> awaiting_hello_;  // oldest first, at most max(4, 2 x size)
  std::atomic<bool> finished_{false};
  std::atomic<double> waiting_{0.0};
  std::atomic<bool> bounded_{false};
  bool stopping_ = false;
};

}  // namespace quorum::coord
