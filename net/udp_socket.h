// udp_socket.h: UdpSocket, a UDP socket (IPv4 or IPv6) owned by one worker.
//
//   auto socket = surge::UdpSocket::bind(surge::SocketAddress::ipv4_any(5353));   // port 0: kernel picks
//   if (!socket) co_return socket.error();                 // e.g. "bind: Address already in use"
//   std::array<std::byte, 1500> datagram;
//   auto received = co_await socket->recv_from(datagram);
//   if (!received) co_return received.error();
//   if (received->truncated) { /* the datagram was longer than `datagram`: the rest is gone */ }
//   co_await socket->send_to(surge::ConstBuffer(datagram.data(), received->size), received->source);
//
// Datagrams: each send is one datagram (all or nothing: a successful send returns the whole size), each
// receive takes one. A datagram longer than the receiving buffer is never silently cut: the result says
// `truncated` (the kernel discards the rest, as recvmsg(2) does; MSG_TRUNC). Empty datagrams are valid.
//
// Buffers: every send/receive borrows the caller's buffer until the returned awaitable completes (also
// after cancellation); nothing is copied, and nothing is allocated per datagram (the msghdr, iovec and
// address live in the awaitable, in the awaiting coroutine's frame). recv_borrowed() receives into a
// buffer the worker lends instead (see there).
//
// Threads: awaitables must be awaited right away, on the worker thread that owns the socket (the one
// that bound it). Any number of sends and receives may be in flight at the same time (a server keeps
// several receives waiting); each receive gets a datagram of its own, whole. recv_borrowed() hands
// datagrams to waiting receives in arrival order; with several recv()/recv_from() in flight on io_uring
// the kernel decides which of them gets which datagram, so their completions may not follow arrival order.
//
// Cancellation and deadlines work as for every awaitable (runtime/internal/io_awaitable.h): a cancelled
// receive ends with ECANCELED unless a datagram had already arrived (then it is reported), a passed
// deadline with ETIMEDOUT. Errors are values naming the operation ("sendmsg", "recvmsg", "bind").
// On a connected socket the kernel reports an ICMP port unreachable from the peer as ECONNREFUSED on a
// later receive or send.
// Destroying the socket closes it; it must not outlive its worker.
#ifndef SURGE_NET_UDP_SOCKET_H_
#define SURGE_NET_UDP_SOCKET_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <optional>

#include "net/borrowed_buffer.h"
#include "net/buffer.h"
#include "net/internal/owned_socket.h"
#include "net/socket_address.h"
#include "runtime/internal/io_awaitable.h"
#include "runtime/result.h"

namespace surge {

// What recv() put into the caller's buffer.
struct UdpReceived {
  std::size_t size = 0;    // bytes of the datagram in the buffer
  bool truncated = false;  // the datagram was longer than the buffer: the rest was discarded
};

// What recv_from() put into the caller's buffer, and who sent it.
struct UdpReceivedFrom {
  std::size_t size = 0;
  bool truncated = false;
  SocketAddress source;
};

// A datagram in a buffer the worker lent (recv_borrowed()).
struct UdpBorrowedDatagram {
  BorrowedBuffer payload;  // may be empty (an empty datagram); released when this is destroyed
  bool truncated = false;  // longer than what the lent buffer had room for: the rest was discarded
  SocketAddress source;
};

// How UdpSocket::bind sets the socket up before binding.
struct UdpBindOptions {
  // IPV6_V6ONLY for an IPv6 address: true serves IPv6 only; false also takes IPv4 (as ::ffff:a.b.c.d
  // sources) when bound to [::]. Ignored for IPv4.
  bool v6_only = true;
  bool reuse_address = false;  // SO_REUSEADDR
  bool reuse_port = false;     // SO_REUSEPORT: several sockets (one per worker) share the port
};

class UdpSocket {
 public:
  using BindOptions = UdpBindOptions;

  class SendToAwaitable;          // Result<size_t>: one sendmsg(2) to an address
  class SendAwaitable;            // Result<size_t>: one sendmsg(2) to the connected peer
  class RecvFromAwaitable;        // Result<UdpReceivedFrom>
  class RecvAwaitable;            // Result<UdpReceived>
  class RecvBorrowedAwaitable;    // Result<UdpBorrowedDatagram>
  class SendSegmentsAwaitable;    // TransferResult: bytes sent as datagrams of one size

  // Binds a new socket of `address`'s family on the current worker (or on `worker`, from its thread).
  // Port 0 asks the kernel for a free port (see local_addr()). Fails with EINVAL off a worker.
  static Result<UdpSocket> bind(const SocketAddress& address, const BindOptions& options);
  static Result<UdpSocket> bind(const SocketAddress& address) { return bind(address, BindOptions{}); }
  static Result<UdpSocket> bind(Worker& worker, const SocketAddress& address, const BindOptions& options = {});

  // Wraps a bound non-blocking UDP socket; takes ownership of the fd.
  UdpSocket(Worker& worker, int fd) noexcept : socket_(worker, fd) {}
  UdpSocket(UdpSocket&&) noexcept = default;
  UdpSocket& operator=(UdpSocket&&) noexcept = default;

  // connect(2): fixes the peer, so that send()/recv() can be used, datagrams from anyone else are
  // dropped by the kernel, and ICMP errors from the peer surface (ECONNREFUSED). Never waits.
  Result<void> connect(const SocketAddress& peer) noexcept;

  // One datagram of `data` to `destination` (copied into the awaitable). On a connected socket the
  // kernel refuses another destination (EISCONN).
  SendToAwaitable send_to(ConstBuffer data, const SocketAddress& destination) noexcept;
  // One datagram into `buffer`, and its source.
  RecvFromAwaitable recv_from(MutableBuffer buffer) noexcept;
  // Connected socket: one datagram to the peer (EDESTADDRREQ when not connected).
  SendAwaitable send(ConstBuffer data) noexcept;
  // One datagram into `buffer` (from the peer, when connected).
  RecvAwaitable recv(MutableBuffer buffer) noexcept;
  // One datagram into a buffer the worker lends (BackendOptions::lent_buffers of lent_buffer_size).
  // io_uring with buffer rings: one multishot recvmsg per socket picks a lent buffer per datagram with
  // no SQE per datagram; each lent buffer also holds the kernel's header and the source address, so a
  // datagram longer than lent_buffer_size - 44 bytes is truncated (flagged). Elsewhere (epoll, older
  // kernels) a plain recvmsg into a pool buffer: room for lent_buffer_size bytes.
  // Bounded: datagrams nobody takes hold at most BackendOptions::lent_buffers_per_stream lent buffers
  // per socket; beyond that they wait in the socket's receive buffer (SO_RCVBUF), where the kernel drops
  // what does not fit. Once a socket is read this way, recv() and recv_from() on it fail at once with
  // EINVAL (the multishot request would race them for datagrams).
  RecvBorrowedAwaitable recv_borrowed() noexcept;

  // Sends `data` as consecutive datagrams of `segment_size` bytes (the last one may be shorter), to
  // `destination` or, without one, to the connected peer. With segmentation offload (UDP_SEGMENT, Linux
  // 4.18+; see segmentation_offload()) up to 64 datagrams go down in one sendmsg and the kernel cuts them;
  // otherwise one sendmsg per datagram. The result says how many bytes were sent, also after an error,
  // a deadline or a cancel (which stop it between sendmsg calls). Empty `data` sends nothing.
  // EINVAL if segment_size is 0 or more than 65,507 bytes.
  SendSegmentsAwaitable send_segments(ConstBuffer data, std::size_t segment_size,
                                      std::optional<SocketAddress> destination = std::nullopt) noexcept;

  // Whether this kernel has UDP_SEGMENT (probed once per process).
  static bool kernel_has_segmentation_offload() noexcept;
  // Whether send_segments() on this socket uses it: the kernel's answer unless turned off here (for
  // comparisons and tests of the fallback).
  bool segmentation_offload() const noexcept { return gso_; }
  void set_segmentation_offload(bool enabled) noexcept { gso_ = enabled && kernel_has_segmentation_offload(); }

  // Socket options, each a setsockopt(2) whose error names it. Any thread.
  Result<void> set_broadcast(bool enabled) noexcept;        // SO_BROADCAST: allow sends to broadcast addresses
  Result<void> set_send_buffer_size(int bytes) noexcept;    // SO_SNDBUF (Linux doubles it)
  Result<void> set_receive_buffer_size(int bytes) noexcept; // SO_RCVBUF: how much waits before the kernel drops
  Result<int> receive_buffer_size() const noexcept;         // SO_RCVBUF as the kernel keeps it

  Result<SocketAddress> local_addr() const;
  Result<SocketAddress> peer_addr() const;  // ENOTCONN unless connected

  // Closes now; later operations fail with EBADF. Also done by the destructor. Any thread (posted to the
  // owning worker away from it).
  Result<void> close() noexcept { return socket_.close(); }
  bool is_open() const noexcept { return socket_.is_open(); }
  int native_handle() const noexcept { return socket_.fd(); }
  Worker& worker() const noexcept { return socket_.worker(); }

 private:
  internal::OwnedSocket socket_;
  bool gso_ = kernel_has_segmentation_offload();
};

// The error of a recv() or recv_from() on a socket read with recv_borrowed().
inline constexpr const char* kMixedDatagramReads =
    "recvmsg: the socket is read with recv_borrowed() (see UdpSocket::recv_borrowed)";

namespace internal {

// A sendmsg or recvmsg of one buffer, with its msghdr and iovec in the awaitable.
class DatagramAwaitable : public IoAwaitable {
 protected:
  DatagramAwaitable(Worker& worker, OpCode code, int fd, void* data, std::size_t size) noexcept
      : IoAwaitable(worker, code, fd) {
    owned_fd = true;
    iovec_.iov_base = data;
    iovec_.iov_len = size;
    header_.msg_iov = &iovec_;
    header_.msg_iovlen = 1;
    buffer = &header_;
    length = size;
  }
  msghdr header_{};
  iovec iovec_{};
};

}  // namespace internal

class UdpSocket::SendToAwaitable : public internal::DatagramAwaitable {
 public:
  SendToAwaitable(Worker& worker, int fd, ConstBuffer data, const SocketAddress& destination) noexcept
      : DatagramAwaitable(worker, OpCode::kSendMsg, fd, const_cast<void*>(data.data), data.size),
        destination_(destination) {
    header_.msg_name = const_cast<sockaddr*>(destination_.data());
    header_.msg_namelen = destination_.size();
  }
  Result<std::size_t> await_resume() const noexcept { return to_size_result("sendmsg"); }

 private:
  SocketAddress destination_;
};

class UdpSocket::SendAwaitable : public internal::DatagramAwaitable {
 public:
  SendAwaitable(Worker& worker, int fd, ConstBuffer data) noexcept
      : DatagramAwaitable(worker, OpCode::kSendMsg, fd, const_cast<void*>(data.data), data.size) {}
  Result<std::size_t> await_resume() const noexcept { return to_size_result("sendmsg"); }
};

class UdpSocket::RecvAwaitable : public internal::DatagramAwaitable {
 public:
  RecvAwaitable(Worker& worker, int fd, MutableBuffer target, bool mixed) noexcept
      : DatagramAwaitable(worker, OpCode::kRecvMsg, fd, target.data, target.size) {
    if (mixed) refuse(-EINVAL);
  }
  Result<UdpReceived> await_resume() const noexcept {
    if (refused()) return Error(EINVAL, kMixedDatagramReads);
    if (result < 0) return error_for(result, "recvmsg");
    return UdpReceived{static_cast<std::size_t>(result), (header_.msg_flags & MSG_TRUNC) != 0};
  }
};

class UdpSocket::RecvFromAwaitable : public internal::DatagramAwaitable {
 public:
  RecvFromAwaitable(Worker& worker, int fd, MutableBuffer target, bool mixed) noexcept
      : DatagramAwaitable(worker, OpCode::kRecvMsg, fd, target.data, target.size) {
    header_.msg_name = &source_;
    header_.msg_namelen = sizeof(source_);
    if (mixed) refuse(-EINVAL);
  }
  Result<UdpReceivedFrom> await_resume() const noexcept;

 private:
  sockaddr_storage source_{};
};

class UdpSocket::RecvBorrowedAwaitable : public internal::DatagramAwaitable {
 public:
  RecvBorrowedAwaitable(Worker& worker, int fd) noexcept
      : DatagramAwaitable(worker, OpCode::kRecvMsgBorrowed, fd, nullptr, 0) {
    header_.msg_name = &source_;
    header_.msg_namelen = sizeof(source_);  // sockaddr_in6: IPv4 or IPv6 sources (see multishot_recvmsg.cc)
  }
  // A datagram that arrived while its task was being destroyed (worker shutdown) holds a buffer nobody
  // took: give it back.
  ~RecvBorrowedAwaitable() {
    if (completed() && !taken_ && !refused() && result >= 0) {
      internal::WorkerAccess::backend(worker()).release_buffer(buffer_id);
    }
  }
  Result<UdpBorrowedDatagram> await_resume() noexcept;

 private:
  sockaddr_in6 source_{};
  bool taken_ = false;
};

class UdpSocket::SendSegmentsAwaitable : public internal::DatagramAwaitable {
 public:
  SendSegmentsAwaitable(Worker& worker, int fd, ConstBuffer data, std::size_t segment_size,
                        const std::optional<SocketAddress>& destination, bool gso) noexcept;
  bool await_ready() const noexcept { return total_ == 0 || completed(); }
  TransferResult await_resume() const noexcept;

 private:
  static void on_sent(Operation& operation) noexcept;
  void prepare_next() noexcept;

  std::optional<SocketAddress> destination_;
  const std::byte* base_;
  std::size_t total_;
  std::size_t segment_size_;
  std::size_t sent_ = 0;
  std::size_t in_flight_bytes_ = 0;
  bool gso_;
  alignas(cmsghdr) unsigned char control_[CMSG_SPACE(sizeof(std::uint16_t))] = {};
};

inline UdpSocket::SendToAwaitable UdpSocket::send_to(ConstBuffer data, const SocketAddress& destination) noexcept {
  return SendToAwaitable(worker(), native_handle(), data, destination);
}
inline UdpSocket::RecvFromAwaitable UdpSocket::recv_from(MutableBuffer buffer) noexcept {
  return RecvFromAwaitable(worker(), native_handle(), buffer, socket_.borrowed_reads());
}
inline UdpSocket::SendAwaitable UdpSocket::send(ConstBuffer data) noexcept {
  return SendAwaitable(worker(), native_handle(), data);
}
inline UdpSocket::RecvAwaitable UdpSocket::recv(MutableBuffer buffer) noexcept {
  return RecvAwaitable(worker(), native_handle(), buffer, socket_.borrowed_reads());
}
inline UdpSocket::RecvBorrowedAwaitable UdpSocket::recv_borrowed() noexcept {
  socket_.set_borrowed_reads();
  return RecvBorrowedAwaitable(worker(), native_handle());
}
inline UdpSocket::SendSegmentsAwaitable UdpSocket::send_segments(ConstBuffer data, std::size_t segment_size,
                                                                 std::optional<SocketAddress> destination) noexcept {
  return SendSegmentsAwaitable(worker(), native_handle(), data, segment_size, destination, gso_);
}

}  // namespace surge

#endif  // SURGE_NET_UDP_SOCKET_H_
