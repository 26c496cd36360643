// Borrowed datagrams for the io_uring backend (OpCode::kRecvMsgBorrowed): what differs from borrowed
// stream receives (multishot_recv.cc, which runs both: one multishot request per socket, its queue
// bounded per socket and over all sockets, ENOBUFS and re-arming, the pool where there is no buffer ring).
//
// With a buffer ring the socket's request is a multishot recvmsg (6.0+) with buffer selection: every
// datagram lands in a lent buffer laid out as io_uring_recvmsg_out (the sizes and flags), the source
// address (the room the request's msghdr reserves, msg_namelen bytes, in every buffer), then the
// payload. A datagram longer than what is left of the buffer is cut there by the kernel and flagged
// MSG_TRUNC, as recvmsg(2) does; the rest is gone. Handing one over copies the source into the caller's
// msghdr and points the caller at the payload, inside the same lent buffer (no copy of the payload).
// Without a ring, a plain recvmsg reads into a pool buffer placed in the caller's iovec.
#include <liburing.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "runtime/backend/io_uring/io_uring_backend.h"
#include "runtime/backend/io_uring/ring_internal.h"

namespace surge {

std::int32_t IoUringBackend::lend_datagram(Operation& operation, MultishotRecv& receiver, std::int32_t result,
                                           std::uint32_t buffer_id) noexcept {
  if (result < 0) return result;  // no buffer with an error (ECONNREFUSED on a connected socket, ...)
  // A completion without a datagram: the socket was shut down for reading. (A datagram, even an empty
  // one, always brings at least the header.)
  if (result == 0) return -ESHUTDOWN;
  auto& caller = *static_cast<msghdr*>(operation.buffer);
  std::byte* const data = lent_->buffers().data(buffer_id);
  io_uring_recvmsg_out* out = io_uring_recvmsg_validate(data, result, &receiver.datagram_header);
  if (out == nullptr) {  // shorter than the header the kernel writes first: never seen, but never trusted
    release_buffer(buffer_id);
    return -EPROTO;
  }
  if (caller.msg_name != nullptr) {
    std::memcpy(caller.msg_name, io_uring_recvmsg_name(out), std::min(out->namelen, caller.msg_namelen));
  }
  caller.msg_namelen = out->namelen;  // the source's real size, as recvmsg(2) reports it
  caller.msg_flags = static_cast<int>(out->flags);
  operation.buffer = io_uring_recvmsg_payload(out, &receiver.datagram_header);
  operation.buffer_id = buffer_id;
  return static_cast<std::int32_t>(io_uring_recvmsg_payload_length(out, result, &receiver.datagram_header));
}

void IoUringBackend::aim_at_pool_buffer(Operation& operation, std::uint32_t buffer_id) noexcept {
  if (operation.opcode == OpCode::kRecvMsgBorrowed) {
    auto& caller = *static_cast<msghdr*>(operation.buffer);  // stays the msghdr until finish()
    caller.msg_iov[0].iov_base = lent_->buffers().data(buffer_id);
    caller.msg_iov[0].iov_len = lent_->buffers().size();
    caller.msg_iovlen = 1;
    return;
  }
  operation.buffer = lent_->buffers().data(buffer_id);
  operation.length = lent_->buffers().size();
}

}  // namespace surge
