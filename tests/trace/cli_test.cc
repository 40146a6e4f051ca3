// The quorum-trace command line: each subcommand end to end on the fixtures, and every kind of
// bad input exits 2 with a message on stderr that names the file.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/trace/fixtures.h"

namespace quorum::trace {
namespace {

using nlohmann::json;
using testing::fixture;

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "quorum-trace-cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  struct Result {
    int rc = -1;
    std::string out, err;
  };

  // Runs quorum-trace with `args` (already shell-quoted where needed).
  Result run(const std::string& args) {
    const std::string out = dir_ + "/stdout", err = dir_ + "/stderr";
    const std::string cmd =
        std::string("'") + QUORUM_TRACE_BIN + "' " + args + " >'" + out + "' 2>'" + err + "'";
    const int status = std::system(cmd.c_str());
    Result r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read_all(out);
    r.err = read_all(err);
    return r;
  }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

TEST_F(Cli, MergeWritesOneChromeTrace) {
  Result r = run("merge -o '" + path("merged.json") + "' '" + fixture("two/run.json") + "'");
  ASSERT_EQ(r.rc, 0) << r.err;
  const json merged = json::parse(read_all(path("merged.json")));
  ASSERT_TRUE(merged["traceEvents"].is_array());
  int processes = 0;
  for (const json& e : merged["traceEvents"]) {
    processes += e["name"] == "process_name";
    if (e["pid"] == 1 && e["name"] == "step" && e["args"]["step"] == 2) {
      EXPECT_EQ(e["ts"], 3000.0);  // 3250.5 - 250.5
    }
  }
  EXPECT_EQ(processes, 2);
}

TEST_F(Cli, MergeAcceptsExplicitFiles) {
  Result r = run("merge -o '" + path("m.json") + "' '" + fixture("three/run.rank2.json") + "' '" +
                 fixture("three/run.rank0.json") + "'");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("2 of 3 ranks"), std::string::npos) << r.err;
  const json merged = json::parse(read_all(path("m.json")));
  EXPECT_EQ(merged["otherData"]["ranks"], json::array({0, 2}));
}

TEST_F(Cli, SummaryTableAndJson) {
  Result text = run("summary '" + fixture("two/run.json") + "'");
  ASSERT_EQ(text.rc, 0) << text.err;
  EXPECT_NE(text.out.find("step 1"), std::string::npos);
  EXPECT_NE(text.out.find("stragglers"), std::string::npos);

  Result r = run("summary --json --top 1 '" + fixture("two/run.json") + "'");
  ASSERT_EQ(r.rc, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["steps"].size(), 2u);
  for (const json& step : j["steps"]) {
    for (const json& rank : step["ranks"]) {
      const double parts = rank["compute_us"].get<double>() + rank["collective_us"].get<double>() +
                           rank["straggler_wait_us"].get<double>() +
                           rank["negotiation_us"].get<double>() + rank["queue_us"].get<double>() +
                           rank["other_us"].get<double>();
      EXPECT_DOUBLE_EQ(parts, rank["step_us"].get<double>()) << rank.dump();
    }
  }
  EXPECT_EQ(j["steps"][1]["ranks"][1]["compute_us"], 675.0);
  EXPECT_EQ(j["slowest_tensors"].size(), 1u);
}

TEST_F(Cli, SummaryOfAKilledRunLoads) {
  Result r = run("summary '" + fixture("three/run.json") + "'");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("time per mode"), std::string::npos);
  EXPECT_NE(r.out.find("after the last step mark"), std::string::npos);
}

TEST_F(Cli, PlotHtmlAndSvg) {
  Result r = run("plot -o '" + path("p.html") + "' '" + fixture("three/run.json") + "'");
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string html = read_all(path("p.html"));
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);

  r = run("plot -o '" + path("p.svg") + "' '" + fixture("three/run.json") + "'");
  ASSERT_EQ(r.rc, 0) << r.err;
  std::string svg = read_all(path("p.svg"));
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  const std::string ns = "xmlns=\"http://www.w3.org/2000/svg\"";
  ASSERT_NE(svg.find(ns), std::string::npos);
  svg.erase(svg.find(ns), ns.size());  // a namespace name, never fetched
  EXPECT_EQ(svg.find("http://"), std::string::npos);
  EXPECT_EQ(svg.find("https://"), std::string::npos);
}

TEST_F(Cli, UnwritableOutputIsExit1) {
  Result r = run("merge -o '" + path("no/such/dir/m.json") + "' '" + fixture("two/run.json") + "'");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("no/such/dir/m.json: cannot write"), std::string::npos) << r.err;
}

TEST_F(Cli, UsageErrorsAreExit2) {
  EXPECT_EQ(run("").rc, 2);
  EXPECT_EQ(run("merge '" + fixture("two/run.json") + "'").rc, 2);  // no -o
  EXPECT_EQ(run("summary").rc, 2);
  EXPECT_EQ(run("--help").rc, 0);
}

struct BadCli {
  std::vector<std::string> files;
  std::string named;
};

class CliBadInput : public Cli, public ::testing::WithParamInterface<BadCli> {};

TEST_P(CliBadInput, ExitsTwoNamingTheFile) {
  std::string files;
  for (const std::string& f : GetParam().files) files += " '" + fixture(f) + "'";
  for (const std::string& cmd :
       {"summary" + files, "summary --json" + files, "merge -o '" + path("m.json") + "'" + files,
        "plot -o '" + path("p.html") + "'" + files}) {
    SCOPED_TRACE(cmd);
    Result r = run(cmd);
    EXPECT_EQ(r.rc, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("quorum-trace: error: " + fixture(GetParam().named) + ": "),
              std::string::npos)
        << r.err;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Trace, CliBadInput,
    ::testing::Values(BadCli{{"missing.rank0.json"}, "missing.rank0.json"},
                      BadCli{{"bad/truncated.rank0.json"}, "bad/truncated.rank0.json"},
                      BadCli{{"bad/not_quorum.json"}, "bad/not_quorum.json"},
                      BadCli{{"bad/wrong_format.json"}, "bad/wrong_format.json"},
                      BadCli{{"two/run.rank0.json", "bad/other_run.rank1.json"},
                             "bad/other_run.rank1.json"},
                      BadCli{{"two/run.rank0.json", "bad/dup.rank0.json"}, "bad/dup.rank0.json"}));

}  // namespace
}  // namespace quorum::trace
