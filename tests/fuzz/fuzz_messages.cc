// libFuzzer target for the control-plane codec: decode_frame() on arbitrary bytes must either
// reject them with a Status or produce a message that re-encodes to the very same bytes and
// decodes again to an equal message. Any crash, sanitizer report or abort here is a codec bug.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "coordinator/messages.h"

namespace quorum::coord {
namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_messages: %s\n", what);
  std::abort();
}

}  // namespace
}  // namespace quorum::coord

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quorum::coord;
  Message first;
  if (!decode_frame(data, size, &first).is_ok()) return 0;  // rejected: fine

  // The header alone must agree with the whole-frame decoder.
  uint32_t len = 0;
  uint16_t type = 0;
  if (!decode_header(data, &len, &type).is_ok() || len != size - kFrameHeaderBytes ||
      type != first.index()) {
    fail("decode_header disagrees with decode_frame");
  }

  std::vector<uint8_t> again = encode(first);
  Message second;
  quorum::Status s = decode_frame(again.data(), again.size(), &second);
  if (!s.is_ok()) {
    std::fprintf(stderr, "re-decode error: %s\n", s.message().c_str());
    fail("a decoded message did not survive encode + decode");
  }
  if (!(first == second)) fail("encode + decode changed a decoded message");
  // The encoding is canonical: every accepted frame is exactly what encode() writes.
  if (again.size() != size || std::memcmp(again.data(), data, size) != 0) {
    fail("re-encoding an accepted frame gave different bytes");
  }
  return 0;
}
