// Byte-level encoding for control messages: a little-endian Writer and a bounds-checked Reader.
// A Reader never reads past its buffer; a short or malformed buffer sets an error that the
// caller turns into a Status. Pure code; one object per thread.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace quorum::coord {

class Writer {
 public:
  void u8(uint8_t v) { raw(&v, 1); }
  void u16(uint16_t v) { put_le(v); }
  void u32(uint32_t v) { put_le(v); }
  void u64(uint64_t v) { put_le(v); }
  void i32(int32_t v) { put_le(static_cast<uint32_t>(v)); }
  void i64(int64_t v) { put_le(static_cast<uint64_t>(v)); }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    raw(s.data(), s.size());
  }
  void raw(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
  }
  std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  template <typename T>
  void put_le(T v) {
    for (size_t i = 0; i < sizeof(T); ++i) bytes_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t> bytes_;
};

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}

  uint8_t u8() { return get_le<uint8_t>(); }
  uint16_t u16() { return get_le<uint16_t>(); }
  uint32_t u32() { return get_le<uint32_t>(); }
  uint64_t u64() { return get_le<uint64_t>(); }
  int32_t i32() { return static_cast<int32_t>(get_le<uint32_t>()); }
  int64_t i64() { return static_cast<int64_t>(get_le<uint64_t>()); }
  std::string str(size_t max_len) {
    uint32_t n = u32();
    if (n > max_len || n > remaining()) {
      fail("string of " + std::to_string(n) + " bytes exceeds its bound or the frame");
      return {};
    }
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  // A count of items that each take at least `min_item_bytes`: rejected when it cannot fit.
  uint32_t count(size_t max, size_t min_item_bytes) {
    uint32_t n = u32();
    if (n > max || static_cast<uint64_t>(n) * min_item_bytes > remaining()) {
      fail("item count " + std::to_string(n) + " exceeds its bound or the frame");
      return 0;
    }
    return n;
  }

  size_t remaining() const { return ok() ? static_cast<size_t>(end_ - p_) : 0; }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  void fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    p_ = end_;
  }

 private:
  template <typename T>
  T get_le() {
    if (!ok() || static_cast<size_t>(end_ - p_) < sizeof(T)) {
      fail("truncated: needed " + std::to_string(sizeof(T)) + " more bytes");
      return 0;
    }
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(T{p_[i]} << (8 * i));
    p_ += sizeof(T);
    return v;
  }
  const uint8_t* p_;
  const uint8_t* end_;
  std::string error_;
};

}  // namespace quorum::coord
