// The coordinator's TCP front end on loopback, in one process: a peer without the session
// token, with a wrong job size, a duplicate rank, that sends garbage or announces more than a
// Hello before its Hello is dropped; silent peers past the cap go oldest first; a proper
// peer gets Welcome and then plans. Real sockets, no MPI.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "coordinator/control_client.h"
#include "coordinator/coordinator_server.h"

namespace quorum::coord {
namespace {

class ControlPlane : public ::testing::Test {
 protected:
  void SetUp() override {
    ServiceOptions so;
    so.size = 2;
    so.cycle_time = std::chrono::milliseconds(0);
    server_ = std::make_unique<CoordinatorServer>(io_, so, "s3cret",
                                                  [this](const std::string& m) {
                                                    std::lock_guard lk(mu_);
                                                    warnings_.push_back(m);
                                                  });
    ASSERT_TRUE(server_->listen("127.0.0.1", 0).is_ok());
    work_.emplace(io_.get_executor());
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    asio::post(io_, [this] { server_->stop(); });
    work_.reset();
    asio::post(io_, [this] { io_.stop(); });
    thread_.join();
  }

  // Sends raw bytes on a fresh connection and reports whether the server closed it.
  bool dropped_after(const std::vector<uint8_t>& bytes) {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::address_v4::loopback(), server_->port()));
    asio::write(s, asio::buffer(bytes));
    uint8_t buf[64];
    boost::system::error_code ec;
    s.read_some(asio::buffer(buf), ec);  // EOF or reset when dropped; a Welcome otherwise
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

  bool warned(const std::string& fragment) {
    for (int i = 0; i < 200; ++i) {
      {
        std::lock_guard lk(mu_);
        for (auto& w : warnings_) {
          if (w.find(fragment) != std::string::npos) return true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::unique_ptr<CoordinatorServer> server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> warnings_;
};

TEST_F(ControlPlane, WrongTokenIsDropped) {
  EXPECT_TRUE(dropped_after(encode(Hello{0, 2, "guess"})));
  EXPECT_TRUE(warned("bad session token"));
}

TEST_F(ControlPlane, WrongSizeOrRankIsDropped) {
  EXPECT_TRUE(dropped_after(encode(Hello{0, 3, "s3cret"})));
  EXPECT_TRUE(warned("job size 3 differs from 2"));
  EXPECT_TRUE(dropped_after(encode(Hello{5, 2, "s3cret"})));
  EXPECT_TRUE(warned("rank 5 out of range"));
}

TEST_F(ControlPlane, GarbageAndNonHelloAreDropped) {
  EXPECT_TRUE(dropped_after({'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P', '/', '1'}));
  EXPECT_TRUE(dropped_after(encode(Goodbye{})));
  EXPECT_TRUE(warned("first message was not Hello"));
}

TEST_F(ControlPlane, FrameLargerThanAHelloIsRefusedBeforeHello) {
  // A header announcing the full 16 MiB frame limit: allowed once admitted, not before.
  std::vector<uint8_t> header = encode(Goodbye{});
  header.resize(kFrameHeaderBytes);
  uint32_t n = kMaxFramePayload;
  std::memcpy(header.data() + 8, &n, sizeof n);
  EXPECT_TRUE(dropped_after(header));
  EXPECT_TRUE(warned("exceeds the " + std::to_string(kMaxHelloPayload) +
                     "-byte limit before a Hello"));
}

TEST_F(ControlPlane, SilentPeersPastTheCapAreDroppedOldestFirst) {
  // The cap is max(4, 2 x size) = 4 here: the fifth silent peer pushes out the first.
  asio::io_context io;
  std::vector<tcp::socket> silent;
  for (int i = 0; i < 5; ++i) {
    silent.emplace_back(io);
    silent.back().connect(tcp::endpoint(asio::ip::address_v4::loopback(), server_->port()));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // accepted in this order
  }
  uint8_t buf[16];
  boost::system::error_code ec;
  silent.front().read_some(asio::buffer(buf), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  EXPECT_TRUE(warned("more than 4 connections awaiting their Hello"));
  // A real rank still gets in while the others wait.
  ControlClient client;
  Welcome w;
  Status s = client.connect("127.0.0.1", server_->port(), Hello{0, 2, "s3cret"},
                            std::chrono::seconds(5), &w);
  EXPECT_TRUE(s.is_ok()) << s.message();
  client.close();
}

TEST_F(ControlPlane, ProperPeersGetWelcomeAndPlans) {
  ControlClient clients[2];
  for (int r = 0; r < 2; ++r) {
    Welcome w;
    Status s = clients[r].connect("127.0.0.1", server_->port(), Hello{r, 2, "s3cret"},
                                  std::chrono::seconds(5), &w);
    ASSERT_TRUE(s.is_ok()) << s.message();
    EXPECT_GT(w.coordinator_clock_ns, 0);
  }
  // A second connection claiming rank 0 is refused.
  EXPECT_TRUE(dropped_after(encode(Hello{0, 2, "s3cret"})));
  TensorRequest t{"w", CollectiveKind::kAllreduce, ReduceOp::kSum, DataType::kF32,
                  Device::Kind::kHost, 0, {8}};
  for (auto& c : clients) ASSERT_TRUE(c.send(Ready{{ReadyEntry{t, 0, 8}}}).is_ok());
  for (int r = 0; r < 2; ++r) {
    std::vector<Plan> plans;
    std::vector<IdAssignment> names;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (plans.empty() && std::chrono::steady_clock::now() < deadline) {
      std::vector<Message> got;
      ASSERT_TRUE(clients[r].receive(&got).is_ok());
      for (auto& m : got) {
        auto& b = std::get<PlanBatch>(m);
        plans.insert(plans.end(), b.plans.begin(), b.plans.end());
        names.insert(names.end(), b.assignments.begin(), b.assignments.end());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(1u, plans.size());
    EXPECT_EQ(0u, plans[0].seq);
    EXPECT_EQ(PlanKind::kAllreduce, plans[0].kind);
    ASSERT_EQ(1u, names.size()) << "each name is announced once";
    EXPECT_EQ("w", names[0].name);
    EXPECT_EQ(names[0].id, plans[0].ids.at(0));
  }
  // An orderly goodbye is acknowledged.
  ASSERT_TRUE(clients[0].send(Goodbye{}).is_ok());
  bool acked = false;
  for (int i = 0; i < 5000 && !acked; ++i) {
    std::vector<Message> got;
    ASSERT_TRUE(clients[0].receive(&got).is_ok());
    for (auto& m : got) acked |= std::holds_alternative<GoodbyeAck>(m);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(acked);
  for (auto& c : clients) c.close();
}

}  // namespace
}  // namespace quorum::coord
