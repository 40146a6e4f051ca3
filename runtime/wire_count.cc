#include "runtime/wire_count.h"

#include <cstring>

namespace quorum {

double read_count(const unsigned char* buf, DataType wire, size_t i) {
  switch (wire) {
    case DataType::kF32: {
      float v;
      std::memcpy(&v, buf + 4 * i, 4);
      return v;
    }
    case DataType::kF64: {
      double v;
      std::memcpy(&v, buf + 8 * i, 8);
      return v;
    }
    case DataType::kI32: {
      int32_t v;
      std::memcpy(&v, buf + 4 * i, 4);
      return v;
    }
    case DataType::kI64: {
      int64_t v;
      std::memcpy(&v, buf + 8 * i, 8);
      return static_cast<double>(v);
    }
    case DataType::kU8: return buf[i];
    default: return 0;
  }
}

void write_count(unsigned char* buf, DataType wire, size_t i, int64_t count) {
  switch (wire) {
    case DataType::kF32: {
      float v = static_cast<float>(count);
      std::memcpy(buf + 4 * i, &v, 4);
      break;
    }
    case DataType::kF64: {
      double v = static_cast<double>(count);
      std::memcpy(buf + 8 * i, &v, 8);
      break;
    }
    case DataType::kI32: {
      auto v = static_cast<int32_t>(count);
      std::memcpy(buf + 4 * i, &v, 4);
      break;
    }
    case DataType::kI64: std::memcpy(buf + 8 * i, &count, 8); break;
    case DataType::kU8: buf[i] = static_cast<unsigned char>(count); break;
    default: break;
  }
}


}  // namespace quorum
