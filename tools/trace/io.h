// io.h — whole-file reads and writes for quorum-trace, with errors that name the file.
// Free functions, no state; safe to call from any thread.
#pragma once

#include <string>

#include "quorum/types.h"

namespace quorum::trace {

// Reads all of `path` into `*text`. Errors (kInvalidArgument, message "<path>: <problem>"):
// no such file, a directory, unreadable.
Status read_text_file(const std::string& path, std::string* text);

// Writes `text` to `path`, replacing it. Errors (kInternal, "<path>: cannot write: ...") when the
// file cannot be created or the write fails (disk full, ...).
Status write_text_file(const std::string& path, const std::string& text);

}  // namespace quorum::trace
