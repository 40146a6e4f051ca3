// table.h — fixed-width text tables in the nccl-tests manner: a '#'-prefixed header line, then
// one right-aligned row per result, columns optionally split into groups by " |". Formatting
// only; the caller prints the strings (rank 0, in practice).
#pragma once

#include <string>
#include <vector>

namespace quorum::bench {

struct Column {
  std::string name;
  int width = 10;
  bool starts_group = false;  // a " |" separator before this column
  bool left = false;          // left-aligned (names); numbers are right-aligned
};

class Table {
 public:
  explicit Table(std::vector<Column> columns);

  // The header line, '\n' included.
  std::string header() const;
  // One row; `cells` holds one string per column (extra cells are ignored, missing ones blank).
  std::string row(const std::vector<std::string>& cells) const;

 private:
  std::string line(const std::vector<std::string>& cells, bool is_header) const;
  std::vector<Column> columns_;
};

// printf("%.*f") as a string.
std::string fixed(double value, int precision);

}  // namespace quorum::bench
