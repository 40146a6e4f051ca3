// The coordinator's TCP front end on loopback, in one process: a peer without the session
// token, with a wrong job size, a duplicate rank, or that sends garbage is dropped; a proper
// peer gets Welcome and then plans. Real sockets, no MPI.
#include <gtest/gtest.h>

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
    ASSERT_TRUE(server_->listen(0).is_ok());
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

TEST_F(ControlPlane, ProperPeersGetWelcomeAndPlans) {
  asio::io_context cio;
  auto guard = asio::make_work_guard(cio);
  std::thread cthread([&] { cio.run(); });
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Plan> got[2];
  std::vector<IdAssignment> names[2];
  ControlClient clients[2] = {ControlClient(cio), ControlClient(cio)};
  for (int r = 0; r < 2; ++r) {
    Welcome w;
    Status s = clients[r].connect("127.0.0.1", server_->port(), Hello{r, 2, "s3cret"},
                                  std::chrono::seconds(5), &w);
    ASSERT_TRUE(s.is_ok()) << s.message();
    EXPECT_GT(w.coordinator_clock_ns, 0);
    clients[r].start(
        [&, r](Message m) {
          std::lock_guard lk(mu);
          if (auto* b = std::get_if<PlanBatch>(&m)) {
            got[r].insert(got[r].end(), b->plans.begin(), b->plans.end());
            names[r].insert(names[r].end(), b->assignments.begin(), b->assignments.end());
          }
          cv.notify_all();
        },
        [](const std::string&) {});
  }
  // A second connection claiming rank 0 is refused.
  EXPECT_TRUE(dropped_after(encode(Hello{0, 2, "s3cret"})));
  TensorRequest t{"w", CollectiveKind::kAllreduce, ReduceOp::kSum, DataType::kF32,
                  Device::Kind::kHost, 0, {8}};
  for (auto& c : clients) c.send(Ready{{ReadyEntry{t, 0, 8}}});
  {
    std::unique_lock lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(5),
                            [&] { return !got[0].empty() && !got[1].empty(); }));
    for (int r = 0; r < 2; ++r) {
      ASSERT_EQ(1u, got[r].size());
      EXPECT_EQ(0u, got[r][0].seq);
      EXPECT_EQ(PlanKind::kAllreduce, got[r][0].kind);
      ASSERT_EQ(1u, names[r].size()) << "each name is announced once";
      EXPECT_EQ("w", names[r][0].name);
      EXPECT_EQ(names[r][0].id, got[r][0].ids.at(0));
    }
  }
  for (auto& c : clients) c.close();
  guard.reset();
  cthread.join();
}

}  // namespace
}  // namespace quorum::coord
