#include "tools/trace/io.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace quorum::trace {

Status read_text_file(const std::string& path, std::string* text) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) return Status(StatusCode::kInvalidArgument, path + ": no such file");
  if (fs::is_directory(st)) {
    return Status(StatusCode::kInvalidArgument, path + ": is a directory, expected a trace file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(StatusCode::kInvalidArgument, path + ": cannot open: " + std::strerror(errno));
  }
  text->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return Status(StatusCode::kInvalidArgument, path + ": read failed: " + std::strerror(errno));
  }
  return Status::ok();
}

Status write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status(StatusCode::kInternal, path + ": cannot write: " + std::strerror(errno));
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  // close() flushes; a full disk shows up only here.
  if (!out) return Status(StatusCode::kInternal, path + ": cannot write: " + std::strerror(errno));
  return Status::ok();
}

}  // namespace quorum::trace
