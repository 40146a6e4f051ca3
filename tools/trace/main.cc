// quorum-trace: reads the per-rank timeline files a run writes with QUORUM_TIMELINE
// (docs/timeline-format.md).
//
//   quorum-trace merge -o merged.json trace.json            one Chrome trace, all ranks
//   quorum-trace summary [--json] [--top N] trace.json      per-step breakdown, stragglers, ...
//   quorum-trace plot -o plot.html|plot.svg trace.json      stacked bars per step and rank
//
// Inputs are per-rank files or a prefix (trace.json → trace.rank*.json). Exit status: 0 ok,
// 2 bad input (unreadable, not a quorum trace, mixed runs, a rank twice) or bad usage,
// 1 the output could not be written.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "tools/trace/inputs.h"
#include "tools/trace/io.h"
#include "tools/trace/merge.h"
#include "tools/trace/plot.h"
#include "tools/trace/report.h"
#include "tools/trace/summary.h"

namespace quorum::trace {
namespace {

constexpr int kExitOutput = 1;
constexpr int kExitInput = 2;

int fail(const Status& s, int code) {
  std::cerr << "quorum-trace: error: " << s.message() << "\n";
  return code;
}

bool load(const std::vector<std::string>& inputs, RawEvents raw, std::vector<TraceFile>* traces,
          int* rc) {
  Status s = load_run(inputs, traces, raw);
  if (!s.is_ok()) *rc = fail(s, kExitInput);
  return s.is_ok();
}

void note_missing_ranks(const std::vector<TraceFile>& traces) {
  const int64_t size = traces.front().header.size;
  if (static_cast<int64_t>(traces.size()) < size) {
    std::cerr << "quorum-trace: note: " << traces.size() << " of " << size
              << " ranks' files given\n";
  }
}

int run_merge(const std::vector<std::string>& inputs, const std::string& output) {
  std::vector<TraceFile> traces;
  int rc = 0;
  if (!load(inputs, RawEvents::kKeep, &traces, &rc)) return rc;
  note_missing_ranks(traces);
  Status s = write_text_file(output, merged_text(traces));
  return s.is_ok() ? 0 : fail(s, kExitOutput);
}

int run_summary(const std::vector<std::string>& inputs, bool json, size_t top, size_t last) {
  std::vector<TraceFile> traces;
  int rc = 0;
  if (!load(inputs, RawEvents::kDrop, &traces, &rc)) return rc;
  const Summary summary = summarize(traces);
  if (json) {
    std::cout
        << summary_json(summary, top).dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
        << "\n";
  } else {
    std::cout << summary_text(summary, top, last);
  }
  std::cout.flush();
  if (!std::cout) return fail(Status(StatusCode::kInternal, "stdout: write failed"), kExitOutput);
  return 0;
}

int run_plot(const std::vector<std::string>& inputs, const std::string& output) {
  std::vector<TraceFile> traces;
  int rc = 0;
  if (!load(inputs, RawEvents::kDrop, &traces, &rc)) return rc;
  const Summary summary = summarize(traces);
  const bool svg = output.size() >= 4 && output.compare(output.size() - 4, 4, ".svg") == 0;
  Status s = write_text_file(output, svg ? plot_svg(summary) : plot_html(summary));
  return s.is_ok() ? 0 : fail(s, kExitOutput);
}

}  // namespace
}  // namespace quorum::trace

int main(int argc, char** argv) {
  using namespace quorum::trace;
  CLI::App app{
      "quorum-trace: merge, summarise and plot quorum timeline files "
      "(QUORUM_TIMELINE=trace.json writes trace.rank<R>.json per rank)"};
  app.require_subcommand(1);
  const char* inputs_help =
      "per-rank trace files, or a prefix such as trace.json standing for trace.rank*.json";

  std::vector<std::string> merge_in, summary_in, plot_in;
  std::string merge_out, plot_out;
  bool json = false;
  size_t top = 10;
  size_t last = 0;

  CLI::App* merge = app.add_subcommand(
      "merge",
      "one Chrome trace (Perfetto, chrome://tracing) with a process per rank, on rank "
      "0's clock");
  merge->add_option("-o,--output", merge_out, "the merged trace to write")->required();
  merge->add_option("traces", merge_in, inputs_help)->required();

  CLI::App* summary = app.add_subcommand(
      "summary",
      "per-step time breakdown per rank (max/mean across ranks), stragglers, fusion, "
      "slowest tensors, time per mode");
  summary->add_flag("--json", json, "print JSON (times in microseconds) instead of tables");
  summary->add_option("--top", top, "how many of the slowest tensors to list")
      ->capture_default_str();
  summary->add_option("--last", last, "per-step tables only for the last N steps (0 = all)");
  summary->add_option("traces", summary_in, inputs_help)->required();

  CLI::App* plot = app.add_subcommand(
      "plot", "stacked bars per step and rank; a self-contained .html page, or .svg");
  plot->add_option("-o,--output", plot_out, "the file to write: *.svg for SVG, else HTML")
      ->required();
  plot->add_option("traces", plot_in, inputs_help)->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitInput;
  }
  if (merge->parsed()) return run_merge(merge_in, merge_out);
  if (summary->parsed()) return run_summary(summary_in, json, top, last);
  return run_plot(plot_in, plot_out);
}
