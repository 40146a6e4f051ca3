// plot: self-contained (nothing fetched), an <svg> with a legend, axis labels and a bar
// segment per non-zero part.
#include "tools/trace/plot.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/trace/fixtures.h"

namespace quorum::trace {
namespace {

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

TEST(Plot, HtmlIsSelfContained) {
  const std::string html = plot_html(summarize(testing::load_fixture_run("three/run.json")));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  for (const char* part :
       {"compute", "collective", "straggler_wait", "negotiation", "queue", "other"}) {
    EXPECT_NE(html.find(std::string(">") + part + "</text>"), std::string::npos) << part;
  }
  EXPECT_NE(html.find("time per step (ms)"), std::string::npos);
  EXPECT_NE(html.find("step (one bar per rank"), std::string::npos);
  // Five bars (3 ranks in step 1, 2 in step 2), each with its figures in a tooltip.
  EXPECT_EQ(count(html, "<g><title>step "), 5u);
  EXPECT_NE(html.find("step 1, rank 0: 0.800 ms"), std::string::npos);
}

TEST(Plot, SvgNamesOnlyItsNamespace) {
  std::string svg = plot_svg(summarize(testing::load_fixture_run("two/run.json")));
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  const std::string ns = "xmlns=\"http://www.w3.org/2000/svg\"";
  ASSERT_EQ(count(svg, ns), 1u);
  svg.erase(svg.find(ns), ns.size());
  EXPECT_EQ(svg.find("http://"), std::string::npos);
  EXPECT_EQ(svg.find("https://"), std::string::npos);
  EXPECT_EQ(count(svg, "<svg"), 1u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

TEST(Plot, NoStepsStillDraws) {
  Summary empty;
  empty.run_id = "r";
  const std::string html = plot_html(empty);
  EXPECT_NE(html.find("no finished steps"), std::string::npos);
}

}  // namespace
}  // namespace quorum::trace
