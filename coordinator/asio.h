// Boost 1.74's Asio needs <utility> ahead of it under GCC 12 in C++20 mode; include Asio only
// through this header.
#pragma once

#include <utility>

#include <boost/asio.hpp>

namespace quorum::coord {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
}  // namespace quorum::coord
