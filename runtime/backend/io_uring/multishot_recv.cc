// Borrowed receives for the io_uring backend (OpCode::kRecvBorrowed; datagrams, OpCode::kRecvMsgBorrowed,
// go the same way with a multishot recvmsg: multishot_recvmsg.cc has what differs).
//
// With a provided-buffer ring (5.19+; multishot recv 6.0+): the backend's lent buffers are published in
// one ring (buffer group 0), and each stream that reads this way has one multishot recv request with
// buffer selection: the kernel picks a buffer for every chunk that arrives and posts it, with no new
// SQE. Chunks go to the stream's oldest waiting receive, else into the stream's queue, which is bounded
// per stream (BackendOptions::lent_buffers_per_stream) and, over all streams, to half the ring: at the
// stream's bound its request is cancelled, at the all-streams bound the request of every stream nobody
// is reading; the data waits in the socket and TCP flow control pushes back on the peer, until a read
// has taken half the stream's queue (or finds it empty) and arms it again. So peers that send and are
// never read cannot take the ring from the streams whose readers wait: half of it is always theirs.
// A request ends with ENOBUFS when the ring is empty: that is counted, and the request is armed again as
// soon as a buffer comes back, whichever way it comes back (released by its borrower, or returned from
// the queue of a stream that closed), so no byte is lost (the data waits in the socket).
//
// Without one (older kernel, or allow_buffer_ring off): a receive takes a free buffer from the same pool
// and is a plain recv into it; with none free it waits for one to come back.
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "runtime/backend/io_uring/io_uring_backend.h"
#include "runtime/backend/io_uring/ring_internal.h"

namespace surge {

using internal::OperationAccess;

using namespace internal::uring;  // NOLINT: the backend's own tags and states

void IoUringBackend::set_up_lent_buffers() noexcept {
  if (lent_) return;
  lent_ = std::make_unique<internal::LentBufferRing>(ring_, lent_buffer_count_, lent_buffer_size_,
                                                     allow_buffer_ring_ && features_.buffer_rings &&
                                                         features_.multishot_recv);
  lent_mode_.store(lent_->is_ring() ? 1 : 2, std::memory_order_release);
  if (lent_->is_ring()) {
    // Half the ring, or the per-stream bound where that is larger: a bound of the whole ring or more
    // turns both off (the ring running dry is then the only limit).
    max_queued_chunks_ = std::max<std::size_t>({lent_->count() / 2, lent_buffers_per_stream_, 1});
  }
}

void IoUringBackend::recv_borrowed(Operation& operation) noexcept {
  set_up_lent_buffers();
  if (lent_->is_ring()) {
    recv_from_multishot(operation);
  } else {
    recv_into_pool_buffer(operation);
  }
}

// ---- With a buffer ring ----

void IoUringBackend::recv_from_multishot(Operation& operation) noexcept {
  const auto fd = static_cast<std::size_t>(operation.fd);
  if (fd >= receivers_.size()) receivers_.resize(fd * 2 + 16);
  if (!receivers_[fd]) {
    auto created = std::make_unique<MultishotRecv>();
    created->backend = this;
    created->opcode = operation.opcode;  // kRecvBorrowed, or kRecvMsgBorrowed for datagrams
    if (operation.opcode == OpCode::kRecvMsgBorrowed) {
      // Room for the source address as the first caller asked for it (sockaddr_in6 for UDP).
      created->datagram_header.msg_namelen = static_cast<const msghdr*>(operation.buffer)->msg_namelen;
      created->buffer = &created->datagram_header;
    }
    created->fd = operation.fd;
    OperationAccess::set_multishot(*created, true);
    created->owned_fd = operation.owned_fd;
    created->complete = &on_recv_request;
    receivers_[fd] = std::move(created);
  }
  MultishotRecv& receiver = *receivers_[fd];
  if (!receiver.ready.empty()) {
    const MultishotRecv::Received received = receiver.ready.front();
    receiver.ready.pop_front();
    if (received.result > 0) --queued_chunks_;
    if (operation.opcode == OpCode::kRecvMsgBorrowed) {
      complete_soon(operation, lend_datagram(operation, receiver, received.result, received.buffer_id));
    } else {
      operation.buffer = received.result > 0 ? lent_->buffers().data(received.buffer_id) : nullptr;
      operation.buffer_id = received.buffer_id;
      complete_soon(operation, received.result);
    }
    // A stream stopped at its bound goes on once its reader has taken half of its queue, before the queue
    // runs dry: a reader that keeps up but no faster does not stall on every refill.
    if (!receiver.armed && !receiver.starved && received.result > 0 &&
        receiver.ready.size() <= lent_buffers_per_stream_ / 2 && queued_chunks_ < max_queued_chunks_) {
      arm(receiver);
    }
    return;
  }
  OperationAccess::state(operation) |= kStateRecvWaiter;
  receiver.waiters.push_back(&operation);
  if (!receiver.armed && !receiver.starved) arm(receiver);
}

void IoUringBackend::arm(MultishotRecv& receiver) noexcept {
  receiver.armed = true;
  submit(receiver);  // multishot is set: prepare() makes it a multishot recv with buffer selection
}

void IoUringBackend::hand_over(Operation& waiter, std::int32_t result, std::uint32_t buffer_id) noexcept {
  waiter.buffer = result > 0 ? lent_->buffers().data(buffer_id) : nullptr;
  waiter.buffer_id = buffer_id;
  finish(waiter, result);  // clears its waiter state with the rest
}

void IoUringBackend::on_recv_request(Operation& request) noexcept {
  auto& receiver = static_cast<MultishotRecv&>(request);
  IoUringBackend& backend = *receiver.backend;
  const std::int32_t result = request.result;
  const bool more = OperationAccess::more(request);
  const bool has_buffer = (OperationAccess::completion_flags(request) & IORING_CQE_F_BUFFER) != 0;
  const auto buffer_id = static_cast<std::uint32_t>(OperationAccess::completion_flags(request) >> IORING_CQE_BUFFER_SHIFT);
  if (has_buffer) backend.lent_->taken_by_kernel();
  bool deliver = true;
  if (result == -ENOBUFS) {
    ++backend.counters_.lent_buffers_exhausted;
    // Buffers may have come back between the kernel finding the ring empty and now: then go on at once
    // (below), else wait for the next one to come back.
    if (backend.lent_->free_in_ring() == 0 && !receiver.starved) {
      receiver.starved = true;
      backend.starved_.push_back(receiver.fd);
    }
    deliver = false;
  } else if (result == -ECANCELED || result == -EAGAIN || result == -EINTR) {
    deliver = false;
  }
  if (receiver.forgotten) {
    if (has_buffer) backend.return_to_ring(buffer_id);
  } else if (deliver) {
    if (!receiver.waiters.empty()) {
      Operation& waiter = *receiver.waiters.front();
      receiver.waiters.pop_front();
      if (waiter.opcode == OpCode::kRecvMsgBorrowed) {
        OperationAccess::state(waiter) &= ~kStateRecvWaiter;
        backend.finish(waiter, backend.lend_datagram(waiter, receiver, result, buffer_id));
      } else {
        backend.hand_over(waiter, result, buffer_id);
      }
    } else {
      receiver.ready.push_back({result, buffer_id});
      if (result > 0) ++backend.queued_chunks_;
      if (backend.queued_chunks_ >= backend.max_queued_chunks_) {
        // All unread streams together hold half the ring: stop every stream that nobody is reading right
        // now, not only this one, or each of them would still take a buffer more (see the top of this file).
        backend.stop_unread_receivers();
      } else if (more && !receiver.stopping && receiver.ready.size() >= backend.lent_buffers_per_stream_) {
        // Nobody reads this stream for now and it holds its share: stop taking buffers for it.
        receiver.stopping = true;
        backend.cancel(receiver);
      }
    }
  } else if (has_buffer) {
    backend.return_to_ring(buffer_id);
  }
  if (more) return;
  receiver.armed = false;
  receiver.stopping = false;
  if (receiver.forgotten) return backend.retire(receiver);
  if (!receiver.waiters.empty() && !receiver.starved) backend.arm(receiver);
}

void IoUringBackend::stop_unread_receivers() noexcept {
  for (const std::unique_ptr<MultishotRecv>& each : receivers_) {
    if (!each || !each->armed || each->stopping || each->forgotten || !each->waiters.empty()) continue;
    each->stopping = true;
    cancel(*each);
  }
}

void IoUringBackend::return_to_ring(std::uint32_t buffer_id) noexcept {
  lent_->publish(buffer_id);
  if (!starved_.empty()) wake_starved();
}

void IoUringBackend::wake_starved() noexcept {
  // Streams whose request ran dry can go on now. Each is listed once (its `starved` flag).
  std::vector<int> starved;
  starved.swap(starved_);
  for (int fd : starved) {
    const auto index = static_cast<std::size_t>(fd);
    if (index >= receivers_.size() || !receivers_[index]) continue;
    MultishotRecv& receiver = *receivers_[index];
    if (!receiver.starved) continue;
    receiver.starved = false;
    if (!receiver.armed && !receiver.waiters.empty()) arm(receiver);
  }
  starved.clear();
  if (starved_.empty()) starved_.swap(starved);  // keep the capacity (no allocation next time), drop nothing
}

bool IoUringBackend::cancel_recv_waiter(Operation& operation) noexcept {
  if ((OperationAccess::state(operation) & kStateRecvWaiter) != 0) {
    const auto fd = static_cast<std::size_t>(operation.fd);
    if (fd < receivers_.size() && receivers_[fd]) {
      auto& waiters = receivers_[fd]->waiters;
      waiters.erase(&operation);
    }
    OperationAccess::state(operation) &= ~kStateRecvWaiter;
    complete_soon(operation, -ECANCELED);
    return true;
  }
  if ((OperationAccess::state(operation) & kStateBufferWaiter) != 0) {
    buffer_waiters_.erase(&operation);
    OperationAccess::state(operation) &= ~kStateBufferWaiter;
    complete_soon(operation, -ECANCELED);
    return true;
  }
  return false;
}

void IoUringBackend::forget_receiver(int fd) noexcept {
  const auto index = static_cast<std::size_t>(fd);
  if (fd < 0 || index >= receivers_.size() || !receivers_[index]) return;
  MultishotRecv& receiver = *receivers_[index];
  // Contract: nothing is in flight on a closing fd. If receives are, fail them rather than strand them.
  receiver.waiters.for_each([this](Operation* waiter) {
    OperationAccess::state(*waiter) &= ~kStateRecvWaiter;
    complete_soon(*waiter, -ECANCELED);
  });
  receiver.waiters.clear();
  receiver.ready.for_each([this](const MultishotRecv::Received& received) {
    if (received.result <= 0) return;
    --queued_chunks_;
    return_to_ring(received.buffer_id);
  });
  receiver.ready.clear();
  receiver.forgotten = true;
  if (receiver.armed) {
    retiring_.push_back(std::move(receivers_[index]));  // the fd number may be reused meanwhile
    cancel(*retiring_.back());                           // its final completion retires it
  } else {
    receivers_[index].reset();
  }
}

Result<void> IoUringBackend::detach_fd(int fd) noexcept {
  expect_owner_thread("detach_fd");
  if (has_ops_on_fd(fd)) return Error(EBUSY, "move_to: an operation is in flight on the socket");
  const auto index = static_cast<std::size_t>(fd);
  if (fd >= 0 && index < receivers_.size() && receivers_[index]) {
    MultishotRecv& receiver = *receivers_[index];
    if (receiver.armed) stop_receiver_now(receiver);
    if (!receiver.ready.empty()) {
      return Error(EBUSY, "move_to: bytes received by read_borrowed() have not been read yet (read them first)");
    }
  }
  forget_fd(fd);
  return ok();
}

void IoUringBackend::stop_receiver_now(MultishotRecv& receiver) noexcept {
  // Waits in the kernel for the request's last completion (a cancelled multishot recv ends at once), and
  // handles the receiver's completions out of turn as they come; everything else stays queued, in order,
  // for the next dispatch. Chunks that arrived meanwhile join the receiver's queue: none is lost.
  cancel(receiver);
  const std::uint64_t request = user_data_for(receiver, kTagOperation);
  while (receiver.armed) {
    ++counters_.wait_syscalls;
    io_uring_submit_and_wait(&ring_, 1);
    collect_completions(SIZE_MAX);  // all of them: the receiver's may be anywhere in the queue
    for (std::size_t i = pending_head_; i < pending_.size() && receiver.armed; ++i) {
      if (pending_[i].user_data != request) continue;
      const Completion completion = pending_[i];
      pending_[i].user_data = kTagIgnore;
      dispatch(completion.user_data, completion.result, completion.flags);
    }
  }
}

void IoUringBackend::retire(MultishotRecv& receiver) noexcept {
  auto it = std::find_if(retiring_.begin(), retiring_.end(), [&](const auto& each) { return each.get() == &receiver; });
  if (it != retiring_.end()) retiring_.erase(it);  // destroys `receiver`
}

// ---- Without a buffer ring: a pool ----

void IoUringBackend::recv_into_pool_buffer(Operation& operation) noexcept {
  const std::optional<std::uint32_t> id = lent_->buffers().take();
  if (!id) {
    ++counters_.lent_buffers_exhausted;
    OperationAccess::state(operation) |= kStateBufferWaiter;
    buffer_waiters_.push_back(&operation);
    return;
  }
  aim_at_pool_buffer(operation, *id);
  operation.buffer_id = *id;
  OperationAccess::state(operation) |= kStateHoldsBuffer;
  prepare(operation);
}

// ---- Both ----

void IoUringBackend::release_buffer(std::uint32_t buffer_id) noexcept {
  expect_owner_thread("release_buffer");
  if (!lent_ || buffer_id >= lent_->count()) return;
  if (!lent_->is_ring()) {
    lent_->buffers().give_back(buffer_id);
    if (!buffer_waiters_.empty()) {
      Operation& next = *buffer_waiters_.front();
      buffer_waiters_.pop_front();
      OperationAccess::state(next) &= ~kStateBufferWaiter;
      recv_into_pool_buffer(next);
    }
    return;
  }
  return_to_ring(buffer_id);
}

}  // namespace surge
