#include "ops/transfer.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "ops/backoff.h"
#include "ops/kernels.h"
#include "ops/mpi_backend.h"

namespace quorum::ops {
namespace {

// MPI counts are int; a segment never exceeds this many elements whatever segment_bytes says.
constexpr size_t kMaxSegmentElems = size_t{1} << 30;
constexpr auto kMaxPause = std::chrono::microseconds(8);
constexpr auto kPatientPause = std::chrono::microseconds(128);

std::vector<unsigned char>& thread_scratch(ScratchSlot slot) {
  static thread_local std::array<std::vector<unsigned char>, 2> scratch;
  return scratch[static_cast<size_t>(slot)];
}

}  // namespace

Status check_transfer_args(const void* buf, size_t count, DataType t, const char* who) {
  if (transport_datatype(t) == MPI_DATATYPE_NULL) {
    return Status(StatusCode::kInvalidArgument,
                  std::string(who) + " cannot carry dtype " + std::string(dtype_name(t)));
  }
  if (buf == nullptr && count > 0) {
    return Status(StatusCode::kInvalidArgument, std::string(who) + ": null buffer");
  }
  return Status::ok();
}

Status poll_until(const std::function<Status(bool* done, bool* moved)>& poll,
                  const std::function<void()>& progress, Patience patience) {
  // Short collectives finish within a few polls, so a 4 KiB allreduce stays in the tens of
  // microseconds; sleeps of at most 8 us after that keep a long one nearly free of CPU. Each
  // poll that moves starts the pause over, as a fresh wait would.
  const auto patient_cap = patience == Patience::kPatient ? kPatientPause : kMaxPause;
  Backoff backoff(kMaxPause, patient_cap);
  for (;;) {
    bool done = false, moved = false;
    QUORUM_RETURN_IF_ERROR(poll(&done, &moved));
    if (done) return Status::ok();
    if (moved) {
      backoff = Backoff(kMaxPause, patient_cap);
      continue;
    }
    if (progress) progress();
    QUORUM_RETURN_IF_ERROR(abandoned_status());
    backoff.pause();
  }
}

TransferQueue::TransferQueue(MPI_Comm comm, DataType t, ReduceOp op, size_t segment_bytes,
                             ScratchSlot slot)
    : comm_(comm),
      type_(transport_datatype(t)),
      t_(t),
      op_(op),
      elem_(dtype_size(t)),
      seg_elems_(std::clamp<size_t>(segment_bytes / dtype_size(t), 1, kMaxSegmentElems)),
      scratch_(thread_scratch(slot)) {
  send_req_.fill(MPI_REQUEST_NULL);
  recv_req_.fill(MPI_REQUEST_NULL);
}

TransferQueue::~TransferQueue() { cancel_in_flight(); }

void TransferQueue::cancel_in_flight() {
  for (MPI_Request& r : recv_req_) {
    if (r == MPI_REQUEST_NULL) continue;
    MPI_Cancel(&r);
    MPI_Wait(&r, MPI_STATUS_IGNORE);
  }
  // Completing a send could need the peer, which may be gone.
  for (MPI_Request& r : send_req_) {
    if (r != MPI_REQUEST_NULL) MPI_Request_free(&r);
  }
}

void TransferQueue::push(const Transfer& x) { items_.emplace_back(x); }

void TransferQueue::push(std::function<Status()> action) { items_.emplace_back(std::move(action)); }

Status TransferQueue::poll(bool* moved) {
  for (;;) {
    if (running_) {
      QUORUM_RETURN_IF_ERROR(advance(moved));
      if (running_) return Status::ok();
    }
    if (items_.empty()) return Status::ok();
    auto item = std::move(items_.front());
    items_.pop_front();
    *moved = true;
    if (auto* action = std::get_if<std::function<Status()>>(&item)) {
      QUORUM_RETURN_IF_ERROR((*action)());
    } else {
      QUORUM_RETURN_IF_ERROR(start(std::get<Transfer>(item)));
    }
  }
}

Status TransferQueue::drain(const std::function<void()>& progress) {
  return poll_until(
      [this](bool* done, bool* moved) {
        QUORUM_RETURN_IF_ERROR(poll(moved));
        *done = empty();
        return Status::ok();
      },
      progress);
}

int TransferQueue::length(size_t count, size_t k) const {
  return static_cast<int>(std::min(seg_elems_, count - k * seg_elems_));
}

// Recomputed on every use: another queue on this thread may have grown a different slot, never
// this one while it runs.
unsigned char* TransferQueue::slot(size_t k) {
  return scratch_.data() + (k % kDepth) * slot_elems_ * elem_;
}

Status TransferQueue::post_recv(size_t k) {
  void* dst = x_.combine == Combine::kCopy ? x_.recv + k * seg_elems_ * elem_ : slot(k);
  return mpi_status(MPI_Irecv(dst, length(x_.recv_count, k), type_, x_.src, x_.tag, comm_,
                              &recv_req_[k % kDepth]),
                    "MPI_Irecv");
}

Status TransferQueue::post_send(size_t k) {
  return mpi_status(MPI_Isend(x_.send + k * seg_elems_ * elem_, length(x_.send_count, k), type_,
                              x_.dest, x_.tag, comm_, &send_req_[k % kDepth]),
                    "MPI_Isend");
}

Status TransferQueue::start(const Transfer& x) {
  x_ = x;
  nsend_ = (x.send_count + seg_elems_ - 1) / seg_elems_;
  nrecv_ = (x.recv_count + seg_elems_ - 1) / seg_elems_;
  // Scratch slots are as large as this step's segments, never larger than the whole receive.
  slot_elems_ = std::min(seg_elems_, x.recv_count);
  if (x.combine != Combine::kCopy && scratch_.size() < kDepth * slot_elems_ * elem_) {
    scratch_.resize(kDepth * slot_elems_ * elem_);
  }
  k_ = 0;
  sent_ = received_ = false;
  running_ = true;
  for (size_t k = 0; k < std::min(kDepth, nrecv_); ++k) QUORUM_RETURN_IF_ERROR(post_recv(k));
  for (size_t k = 0; k < std::min(kDepth, nsend_); ++k) QUORUM_RETURN_IF_ERROR(post_send(k));
  return Status::ok();
}

// Every rank posts segment k of each direction before it waits on it, so no order of polls can
// deadlock. Segment k is combined only once its own send finished (the send may read the same
// memory), then the window moves on by one.
Status TransferQueue::advance(bool* moved) {
  while (k_ < std::max(nsend_, nrecv_)) {
    int flag = 0;
    if (k_ < nsend_ && !sent_) {
      QUORUM_RETURN_IF_ERROR(
          mpi_status(MPI_Test(&send_req_[k_ % kDepth], &flag, MPI_STATUS_IGNORE), "MPI_Test"));
      sent_ = flag != 0;
    }
    if (k_ < nrecv_ && !received_) {
      QUORUM_RETURN_IF_ERROR(
          mpi_status(MPI_Test(&recv_req_[k_ % kDepth], &flag, MPI_STATUS_IGNORE), "MPI_Test"));
      received_ = flag != 0;
    }
    if ((k_ < nsend_ && !sent_) || (k_ < nrecv_ && !received_)) return Status::ok();
    *moved = true;
    if (k_ < nrecv_) {
      if (x_.combine != Combine::kCopy) {
        unsigned char* dst = x_.recv + k_ * seg_elems_ * elem_;
        unsigned char* in = slot(k_);
        const auto n = static_cast<size_t>(length(x_.recv_count, k_));
        if (x_.combine == Combine::kLocalFirst) {
          reduce_into(dst, in, n, t_, op_);
        } else {
          reduce_into(in, dst, n, t_, op_);
          std::memcpy(dst, in, n * elem_);
        }
      }
      if (k_ + kDepth < nrecv_) QUORUM_RETURN_IF_ERROR(post_recv(k_ + kDepth));
    }
    if (k_ + kDepth < nsend_) QUORUM_RETURN_IF_ERROR(post_send(k_ + kDepth));
    ++k_;
    sent_ = received_ = false;
  }
  running_ = false;
  return Status::ok();
}

}  // namespace quorum::ops
