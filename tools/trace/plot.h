// plot.h — a self-contained picture of a Summary: for each step, one stacked bar per rank of
// compute / collective / straggler_wait / negotiation / queue / other, with legend and axes.
// No scripts, fonts, stylesheets or anything else fetched: it opens in any browser offline.
// Per-bar figures are in native SVG tooltips (<title>). Pure functions.
#pragma once

#include <string>

#include "tools/trace/summary.h"

namespace quorum::trace {

// A standalone SVG document. Its only URL-like text is the SVG namespace name
// (xmlns="http://www.w3.org/2000/svg"), which a standalone SVG needs and nothing fetches.
std::string plot_svg(const Summary& s);

// An HTML page with the SVG inline (no namespace needed there) and a table of the overall
// per-rank figures. Contains no "http://" or "https://" at all.
std::string plot_html(const Summary& s);

}  // namespace quorum::trace
