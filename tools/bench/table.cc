#include "tools/bench/table.h"

#include <cstdio>

namespace quorum::bench {

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

std::string Table::header() const {
  std::vector<std::string> names;
  for (const Column& c : columns_) names.push_back(c.name);
  return line(names, true);
}

std::string Table::row(const std::vector<std::string>& cells) const { return line(cells, false); }

std::string Table::line(const std::vector<std::string>& cells, bool is_header) const {
  // The header's '#' takes the place of the rows' leading space, so columns line up.
  std::string out = is_header ? "#" : " ";
  for (size_t i = 0; i < columns_.size(); ++i) {
    const Column& c = columns_[i];
    const std::string& text = i < cells.size() ? cells[i] : std::string();
    if (c.starts_group) out += " |";
    if (i > 0 || !c.left) out += ' ';
    const size_t width = static_cast<size_t>(c.width);
    const std::string pad = text.size() < width ? std::string(width - text.size(), ' ') : "";
    out += c.left ? text + pad : pad + text;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out + "\n";
}

std::string fixed(double value, int precision) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", precision, value);
  return text;
}

}  // namespace quorum::bench
