// Timelines from a real multi-rank run: every rank's file parses, carries the same run id and
// its rank, names its lanes, has the events the format promises, keeps pack/collective/unpack
// from overlapping, and lines up across ranks once clock offsets are applied (the end of one
// collective lands within a bound on every rank). Also: the size cap truncates with a marker.
#include <gtest/gtest.h>
#include <mpi.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "quorum/quorum.h"
#include "tests/mpi/mpi_main.h"

namespace quorum {
namespace {

using nlohmann::json;

std::string dir() {
  static std::string d = [] {
    char buf[64] = "/tmp/quorum-tl-XXXXXX";
    int len = 0;
    if (rank() == 0) {
      if (!mkdtemp(buf)) std::abort();
      len = static_cast<int>(std::strlen(buf));
    }
    MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(buf, len + 1, MPI_CHAR, 0, MPI_COMM_WORLD);
    return std::string(buf);
  }();
  return d;
}

json load(const std::string& file) {
  std::ifstream in(file);
  EXPECT_TRUE(in.good()) << file;
  return json::parse(in);  // throws (fails the test) on invalid JSON
}

void run_steps(int steps, int tensors) {
  std::vector<std::vector<float>> grads(tensors, std::vector<float>(257, 1.0f));
  for (int s = 0; s < steps; ++s) {
    std::vector<Handle> hs;
    for (int t = 0; t < tensors; ++t) {
      Tensor v{grads[t].data(), DataType::kF32, {257}, Device::host()};
      hs.push_back(enqueue_allreduce("grad." + std::to_string(t), v, v));
    }
    for (auto& h : hs) ASSERT_TRUE(wait(h).is_ok());
    mark_step();
  }
}

TEST(Timeline, FilesParseAndAlignAcrossRanks) {
  ASSERT_TRUE(start_timeline(dir() + "/run.json").is_ok());
  run_steps(5, 6);
  // A barrier-like marker: one allreduce every rank finishes at about the same moment.
  std::vector<float> x(1, 1.0f);
  Tensor v{x.data(), DataType::kF32, {1}, Device::host()};
  ASSERT_TRUE(wait(enqueue_allreduce("barrier", v, v)).is_ok());
  stop_timeline();
  MPI_Barrier(MPI_COMM_WORLD);

  json mine = load(dir() + "/run.rank" + std::to_string(rank()) + ".json");
  const json& meta = mine["otherData"];
  EXPECT_EQ("quorum-timeline", meta["format"]);
  EXPECT_EQ(1, meta["version"]);
  EXPECT_EQ(rank(), meta["rank"]);
  EXPECT_EQ(size(), meta["size"]);
  std::map<std::string, int> cats;
  std::vector<std::pair<double, double>> collective_lane;  // (start, end) on tid 3
  double barrier_end = -1;
  int lanes_named = 0;
  for (const json& e : mine["traceEvents"]) {
    EXPECT_EQ(rank(), e["pid"]);
    if (e["ph"] == "M") {
      lanes_named += e["name"] == "thread_name";
      continue;
    }
    cats[e["cat"]]++;
    if (e["tid"] == 3) {
      double ts = e["ts"], dur = e["dur"];
      collective_lane.push_back({ts, ts + dur});
      if (e["cat"] == "collective" && e["args"]["tensors"][0] == "barrier") barrier_end = ts + dur;
    }
    if (e["cat"] == "negotiate") {
      // A plan agreed on the fast path never went through rank 0, which alone knows who was last.
      int last = e["args"]["last_rank"];
      if (e["args"]["path"] == "fast")
        EXPECT_EQ(-1, last) << e.dump();
      else
        EXPECT_TRUE(last >= 0 && last < size()) << e.dump();
    }
  }
  EXPECT_EQ(7, lanes_named);
  EXPECT_EQ(31, cats["negotiate"]);  // 5 steps x 6 tensors + the barrier
  EXPECT_EQ(31, cats["queue"]);
  EXPECT_EQ(31, cats["callback"]);
  EXPECT_EQ(5, cats["step"]);
  EXPECT_GE(cats["collective"], 6);  // at least one fused plan per step
  EXPECT_GT(cats["wait"], 0);
  std::sort(collective_lane.begin(), collective_lane.end());
  for (size_t i = 1; i < collective_lane.size(); ++i) {
    EXPECT_LE(collective_lane[i - 1].second, collective_lane[i].first + 0.002)
        << "pack/collective/unpack overlap on one rank";
  }
  ASSERT_GT(barrier_end, 0);

  // Same run id everywhere, and the barrier lines up on rank 0's clock.
  std::string run_id = meta["run_id"];
  double aligned = barrier_end + static_cast<double>(meta["clock_offset_us"]);
  std::vector<double> all(static_cast<size_t>(size()));
  MPI_Allgather(&aligned, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, MPI_COMM_WORLD);
  for (double t : all) EXPECT_LT(std::abs(t - all[0]), 5000.0) << "more than 5 ms apart";
  std::vector<char> ids(static_cast<size_t>(size()) * 17);
  MPI_Allgather(run_id.c_str(), 17, MPI_CHAR, ids.data(), 17, MPI_CHAR, MPI_COMM_WORLD);
  for (int r = 0; r < size(); ++r) EXPECT_EQ(run_id, std::string(&ids[static_cast<size_t>(r) * 17]));
}

TEST(Timeline, SizeCapTruncatesWithAMarker) {
  // meson runs this binary with QUORUM_TIMELINE_MAX_MB=1; 400 steps of 20 tensors is several MB.
  ASSERT_TRUE(start_timeline(dir() + "/big.json").is_ok());
  run_steps(400, 20);
  stop_timeline();
  std::string file = dir() + "/big.rank" + std::to_string(rank()) + ".json";
  std::ifstream in(file, std::ios::ate);
  EXPECT_LE(static_cast<long>(in.tellg()), 1L << 20) << "the cap is 1 MiB";
  json t = load(file);
  int truncated = 0;
  int64_t dropped = 0;
  for (const json& e : t["traceEvents"]) {
    if (e.value("name", "") == "timeline_truncated") ++truncated;
    if (e.value("name", "") == "timeline_dropped") dropped = e["args"]["dropped"];
  }
  EXPECT_EQ(1, truncated);
  EXPECT_GT(dropped, 1000);
}

}  // namespace
}  // namespace quorum

int main(int argc, char** argv) { return run_mpi_tests(argc, argv); }
