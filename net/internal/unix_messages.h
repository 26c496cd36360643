// unix_messages.h (internal): the sendmsg/recvmsg awaitables under UnixStream and UnixDatagram: data plus
// an address (datagrams) plus descriptors (SCM_RIGHTS). The msghdr, its iovec, the address and the
// control buffer all live inside the awaitable (in the awaiting frame): no allocation per message.
//
// Descriptors received are owned from the moment the kernel installs them: await_resume() hands them to
// a ReceivedFds, and a receive that completed but whose result nobody took (its frame destroyed by a
// worker shutdown before it was resumed) closes them in its destructor. A receive that ends in an error
// or a cancellation installed none. A receive whose control data was truncated (MSG_CTRUNC: more
// descriptors than kMaxFdsPerMessage) closes every one it got (ReceivedFds::truncated()).
//
// Datagram sends and io_uring: a Unix datagram send that has to wait (the receiver's queue is full) is
// sent with MSG_DONTWAIT and, on EAGAIN, tried again after a pause on the worker's timer wheel (1 ms,
// doubling to 16 ms), never left to the backend to wait for. Two reasons: (1) for an unconnected
// send_to the kernel never signals writability (the queue that is full is the receiver's), so waiting
// for it would hang (epoll) or spin (io_uring reports EAGAIN again at once); (2) on io_uring (seen on
// 6.18) a datagram send that waited in the kernel and was retried there sends an empty datagram: the
// first attempt consumed the iovec before failing with EAGAIN, and the retry goes on from there.
// Cancellation and deadlines during such a pause take effect when it ends (within 16 ms).
#ifndef SURGE_NET_INTERNAL_UNIX_MESSAGES_H_
#define SURGE_NET_INTERNAL_UNIX_MESSAGES_H_

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "net/buffer.h"
#include "net/owned_fd.h"
#include "net/unix_address.h"
#include "runtime/internal/io_awaitable.h"
#include "runtime/result.h"
#include "timer/timer_wheel.h"

namespace surge::internal {

// Room for kMaxFdsPerMessage descriptors in one SCM_RIGHTS control message.
inline constexpr std::size_t kFdControlSpace = CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage);

// One sendmsg(2): data, optionally a destination address and descriptors. Result<size_t>: the bytes
// sent (a stream may send fewer than asked; the descriptors then went with the first of them).
class SendMessageAwaitable : public IoAwaitable {
 public:
  // `to`: the destination (copied), or null for a connected socket. `datagram`: see the top of the
  // file. Refused at once (EINVAL) with more than kMaxFdsPerMessage descriptors, or with descriptors and
  // no data on a stream (the kernel would drop them: a stream carries them with a byte).
  SendMessageAwaitable(Worker& worker, int fd, ConstBuffer data, std::span<const int> fds, const UnixAddress* to,
                       bool datagram) noexcept;
  ~SendMessageAwaitable();

  Result<std::size_t> await_resume() const noexcept;

 private:
  static void on_sent(Operation& operation) noexcept;
  static void on_pause_over(void* self) noexcept;

  msghdr message_{};
  iovec vector_{};
  UnixAddress to_ = UnixAddress::unnamed();
  const char* refusal_ = nullptr;
  TimerId pause_;
  std::uint8_t pause_ms_ = 0;
  bool datagram_ = false;
  alignas(cmsghdr) unsigned char control_[kFdControlSpace];
};

// One recvmsg(2): data, the sender's address (datagrams), descriptors. Subclasses turn it into their
// result type with the helpers below.
class ReceiveMessageAwaitable : public IoAwaitable {
 public:
  // `want_fds`: keep descriptors that arrive (else the kernel discards them: no control buffer).
  // `datagram`: ask for the sender's address and the datagram's full length (MSG_TRUNC). `mixed`: the
  // stream is read with read_borrowed(), refused (EINVAL, like StreamReadAwaitable).
  ReceiveMessageAwaitable(Worker& worker, int fd, MutableBuffer data, bool want_fds, bool datagram,
                          bool mixed = false) noexcept;
  // Closes descriptors that arrived for a result nobody took (see the top of the file).
  ~ReceiveMessageAwaitable();

 protected:
  // Precondition: result >= 0. Moves the descriptors received into `out` (once).
  void take_fds(ReceivedFds& out) noexcept;
  // The sender's address (datagrams); unnamed when the sender was not bound or on a stream.
  UnixAddress sender() const noexcept;
  // What recvmsg said in msg_flags (MSG_TRUNC, MSG_CTRUNC).
  int received_flags() const noexcept { return message_.msg_flags; }
  std::size_t capacity() const noexcept { return vector_.iov_len; }

 private:
  msghdr message_{};
  iovec vector_{};
  sockaddr_un from_{};
  bool fds_taken_ = false;
  alignas(cmsghdr) unsigned char control_[kFdControlSpace];
};

}  // namespace surge::internal

#endif  // SURGE_NET_INTERNAL_UNIX_MESSAGES_H_
