#include "bindings/c/quorum_c.h"

#include <cstring>
#include <new>

#include "quorum/quorum.h"

struct quorum_handle {
  quorum::Handle handle;
};

namespace {

int report(const quorum::Status& s, char* err, size_t err_len) {
  if (err && err_len > 0) {
    std::strncpy(err, s.message().c_str(), err_len - 1);
    err[err_len - 1] = '\0';
  }
  return static_cast<int>(s.code());
}

quorum::Tensor host_tensor(const void* data, quorum_dtype dtype, const int64_t* shape, int ndim) {
  quorum::Tensor t;
  t.data = const_cast<void*>(data);
  t.dtype = static_cast<quorum::DataType>(dtype);
  if (shape && ndim > 0) t.shape.assign(shape, shape + ndim);
  if (ndim < 0) t.shape.assign(1, -1);  // rejected by validation with a clear message
  return t;
}

quorum_handle* wrap(quorum::Handle h) {
  auto* out = new (std::nothrow) quorum_handle{std::move(h)};
  return out;
}

}  // namespace

extern "C" {

int quorum_init(char* err, size_t err_len) { return report(quorum::init(), err, err_len); }
int quorum_shutdown(char* err, size_t err_len) { return report(quorum::shutdown(), err, err_len); }
int quorum_rank(void) { return quorum::rank(); }
int quorum_size(void) { return quorum::size(); }
int quorum_local_rank(void) { return quorum::local_rank(); }
int quorum_local_size(void) { return quorum::local_size(); }

quorum_handle* quorum_allreduce(const char* name, const void* input, void* output,
                                quorum_dtype dtype, const int64_t* shape, int ndim, quorum_op op) {
  try {
    return wrap(quorum::enqueue_allreduce(name ? name : "", host_tensor(input, dtype, shape, ndim),
                                          host_tensor(output, dtype, shape, ndim),
                                          static_cast<quorum::ReduceOp>(op)));
  } catch (...) {
    return nullptr;  // allocation failure only
  }
}

quorum_handle* quorum_broadcast(const char* name, void* data, quorum_dtype dtype,
                                const int64_t* shape, int ndim, int root) {
  try {
    return wrap(quorum::enqueue_broadcast(name ? name : "", host_tensor(data, dtype, shape, ndim), root));
  } catch (...) {
    return nullptr;
  }
}

int quorum_wait(quorum_handle* handle, char* err, size_t err_len) {
  if (!handle) {
    return report(quorum::Status(quorum::StatusCode::kInvalidArgument, "quorum_wait on NULL"), err,
                  err_len);
  }
  return report(quorum::wait(handle->handle), err, err_len);
}

int quorum_poll(quorum_handle* handle) { return handle && quorum::poll(handle->handle) ? 1 : 0; }

void quorum_handle_free(quorum_handle* handle) { delete handle; }

}  // extern "C"
