#include "tools/trace/plot.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "tools/trace/strformat.h"

namespace quorum::trace {
namespace {

struct Part {
  size_t field;  // index into kBreakdownFields
  const char* name;
  const char* color;
};
// Bottom to top; the same order as kStepParts.
constexpr std::array<Part, 6> kParts = {{
    {1, "compute", "#9ecae1"},
    {3, "collective", "#3182bd"},
    {4, "straggler_wait", "#e6550d"},
    {5, "negotiation", "#fdae6b"},
    {6, "queue", "#31a354"},
    {7, "other", "#969696"},
}};

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// 1, 2 or 5 times a power of ten, at least `raw`.
double nice_tick(double raw) {
  if (!(raw > 0)) return 1;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= raw) return m * p;
  }
  return 10 * p;
}

struct Layout {
  double left = 72, right = 24, top = 78, bottom = 64;
  double plot_h = 300;
  double slot = 0;  // width per bar; each step adds one empty slot as a gap
  double width = 0, height = 0;
  double y_top_ms = 1, tick_ms = 1;
};

Layout layout(const Summary& s) {
  Layout l;
  const double slots = static_cast<double>(s.steps.size() * (s.ranks.size() + 1));
  l.slot = slots > 0 ? std::clamp(std::floor(960.0 / slots), 3.0, 28.0) : 28;
  l.width = std::max(720.0, l.left + slots * l.slot + l.right);
  l.height = l.top + l.plot_h + l.bottom;
  double max_ms = 0;
  for (const StepSummary& step : s.steps) max_ms = std::max(max_ms, step.max.step / 1000.0);
  l.tick_ms = nice_tick(max_ms / 5);
  l.y_top_ms = std::max(l.tick_ms, std::ceil(max_ms / l.tick_ms) * l.tick_ms);
  return l;
}

std::string axes_and_legend(const Summary& s, const Layout& l) {
  const double x0 = l.left, y0 = l.top + l.plot_h;
  std::string out = strformat(
      "<text x=\"%.1f\" y=\"24\" font-size=\"16\" font-weight=\"bold\">quorum-trace: time per "
      "step by rank, run %s</text>\n",
      x0, escape(s.run_id).c_str());
  double lx = x0;
  for (const Part& p : kParts) {
    out += strformat("<rect x=\"%.1f\" y=\"40\" width=\"12\" height=\"12\" fill=\"%s\"/>", lx,
                     p.color);
    out += strformat("<text x=\"%.1f\" y=\"50\" font-size=\"12\">%s</text>\n", lx + 16, p.name);
    lx += 30 + 7.0 * static_cast<double>(std::string(p.name).size());
  }
  for (double t = 0; t <= l.y_top_ms + l.tick_ms / 2; t += l.tick_ms) {
    const double y = y0 - t / l.y_top_ms * l.plot_h;
    out += strformat("<line x1=\"%.1f\" y1=\"%.2f\" x2=\"%.1f\" y2=\"%.2f\" stroke=\"#dddddd\"/>",
                     x0, y, l.width - l.right, y);
    out += strformat("<text x=\"%.1f\" y=\"%.2f\" font-size=\"11\" text-anchor=\"end\">%g</text>\n",
                     x0 - 6, y + 4, t);
  }
  out += strformat("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333333\"/>\n",
                   x0, l.top, x0, y0);
  out += strformat("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333333\"/>\n",
                   x0, y0, l.width - l.right, y0);
  out += strformat(
      "<text transform=\"translate(18 %.1f) rotate(-90)\" font-size=\"12\" "
      "text-anchor=\"middle\">time per step (ms)</text>\n",
      l.top + l.plot_h / 2);
  std::string ranks;
  if (!s.ranks.empty()) {
    ranks = strformat("ranks %lld", static_cast<long long>(s.ranks.front()));
    if (s.ranks.size() > 1)
      ranks += strformat("&#8211;%lld", static_cast<long long>(s.ranks.back()));
  }
  out += strformat(
      "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">step (one bar per "
      "rank, %s left to right)</text>\n",
      x0 + (l.width - l.right - x0) / 2, l.height - 12, ranks.c_str());
  return out;
}

std::string bars(const Summary& s, const Layout& l) {
  const double y0 = l.top + l.plot_h;
  const double bar_w = l.slot >= 6 ? l.slot - 2 : l.slot;
  const size_t per_group = s.ranks.size() + 1;
  const double group_w = static_cast<double>(per_group) * l.slot;
  const size_t label_every = static_cast<size_t>(std::max(1.0, std::ceil(36.0 / group_w)));
  std::string out;
  for (size_t g = 0; g < s.steps.size(); ++g) {
    const StepSummary& step = s.steps[g];
    const double gx = l.left + static_cast<double>(g * per_group) * l.slot + l.slot / 2;
    for (const RankStep& rs : step.ranks) {
      const auto idx = std::find(s.ranks.begin(), s.ranks.end(), rs.rank) - s.ranks.begin();
      const double x = gx + static_cast<double>(idx) * l.slot;
      out += strformat("<g><title>step %lld, rank %lld: %.3f ms", static_cast<long long>(step.step),
                       static_cast<long long>(rs.rank), rs.time.step / 1000.0);
      for (const Part& p : kParts) {
        const double us = rs.time.*kBreakdownFields[p.field].member;
        out += strformat("&#10;%s %.3f ms (%.1f%%)", p.name, us / 1000.0,
                         rs.time.step > 0 ? 100.0 * us / rs.time.step : 0.0);
      }
      out += "</title>";
      double y = y0;
      for (const Part& p : kParts) {
        const double h = rs.time.*kBreakdownFields[p.field].member / 1000.0 / l.y_top_ms * l.plot_h;
        if (!(h > 0)) continue;
        y -= h;
        out += strformat("<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>",
                         x, y, bar_w, h, p.color);
      }
      out += "</g>\n";
      if (l.slot >= 14) {
        out += strformat(
            "<text x=\"%.2f\" y=\"%.1f\" font-size=\"9\" fill=\"#666666\" "
            "text-anchor=\"middle\">%lld</text>\n",
            x + bar_w / 2, y0 + 11, static_cast<long long>(rs.rank));
      }
    }
    if (g % label_every == 0) {
      out += strformat(
          "<text x=\"%.2f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%lld</text>\n",
          gx + static_cast<double>(s.ranks.size()) * l.slot / 2, y0 + (l.slot >= 14 ? 26 : 16),
          static_cast<long long>(step.step));
    }
  }
  if (s.steps.empty()) {
    out += strformat(
        "<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\">no finished steps in these files (no step "
        "marks)</text>\n",
        l.left + 20, l.top + l.plot_h / 2);
  }
  return out;
}

std::string svg(const Summary& s, bool standalone) {
  const Layout l = layout(s);
  std::string out = strformat(
      "<svg %swidth=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
      "font-family=\"sans-serif\">\n",
      standalone ? "xmlns=\"http://www.w3.org/2000/svg\" " : "", l.width, l.height, l.width,
      l.height);
  out += strformat("<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n",
                   l.width, l.height);
  out += axes_and_legend(s, l) + bars(s, l);
  return out + "</svg>\n";
}

std::string totals_table(const Summary& s) {
  std::string out = "<table>\n<tr><th>rank</th><th>steps</th>";
  for (const BreakdownField& f : kBreakdownFields) out += strformat("<th>%s (ms)</th>", f.label);
  out += "</tr>\n";
  auto row = [&](const std::string& label, const std::string& steps, const Breakdown& b) {
    std::string r = "<tr><td>" + label + "</td><td>" + steps + "</td>";
    for (const BreakdownField& f : kBreakdownFields) {
      r += strformat("<td>%.3f</td>", b.*f.member / 1000.0);
    }
    return r + "</tr>\n";
  };
  for (const RankTotals& t : s.totals) {
    out += row(std::to_string(t.rank), std::to_string(t.steps), t.time);
  }
  out += row("max", "", s.total_max) + row("mean", "", s.total_mean);
  return out + "</table>\n";
}

}  // namespace

std::string plot_svg(const Summary& s) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg(s, true);
}

std::string plot_html(const Summary& s) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>quorum-trace "
      "plot: " +
      escape(s.run_id) +
      "</title>\n<style>\nbody { font-family: sans-serif; margin: 1.5em; }\n"
      ".plot { overflow-x: auto; }\ntable { border-collapse: collapse; font-size: 13px; }\n"
      "th, td { border: 1px solid #cccccc; padding: 3px 8px; text-align: right; }\n"
      "</style>\n</head>\n<body>\n";
  out += strformat(
      "<p>run <b>%s</b>: %zu of %lld ranks, %zu steps. Hover a bar for its figures.</p>\n",
      escape(s.run_id).c_str(), s.ranks.size(), static_cast<long long>(s.size), s.steps.size());
  out += "<div class=\"plot\">\n" + svg(s, false) + "</div>\n";
  out += "<h3>Overall (summed over each rank's steps)</h3>\n" + totals_table(s);
  if (!s.warnings.empty()) {
    out += "<h3>Warnings</h3>\n<ul>\n";
    for (const std::string& w : s.warnings) out += "<li>" + escape(w) + "</li>\n";
    out += "</ul>\n";
  }
  return out + "</body>\n</html>\n";
}

}  // namespace quorum::trace
