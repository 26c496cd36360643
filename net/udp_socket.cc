#include "net/udp_socket.h"

#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103  // linux/udp.h, 4.18+
#endif

namespace surge {
namespace {

// What one GSO sendmsg may carry: the kernel cuts at most UDP_MAX_SEGMENTS (64 before 6.x; 64 is safe
// everywhere) and refuses a super-datagram longer than an IP packet (EMSGSIZE): 65,535 bytes less the
// UDP and the IPv6 header.
constexpr std::size_t kMaxSegmentsPerSend = 64;
constexpr std::size_t kMaxSendBytes = 65535 - 8 - 40;
// The largest UDP payload over IPv4 (and the segment size limit).
constexpr std::size_t kMaxDatagram = 65507;

}  // namespace

bool UdpSocket::kernel_has_segmentation_offload() noexcept {
  static const bool available = [] {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    int segment = 1400;
    const bool ok = ::setsockopt(fd, SOL_UDP, UDP_SEGMENT, &segment, sizeof(segment)) == 0;  // ENOPROTOOPT before 4.18
    ::close(fd);
    return ok;
  }();
  return available;
}

Result<UdpSocket> UdpSocket::bind(const SocketAddress& address, const BindOptions& options) {
  Worker* worker = Worker::current();
  if (worker == nullptr) return Error(EINVAL, "bind: not called on a surge worker (UdpSocket::bind)");
  return bind(*worker, address, options);
}

Result<UdpSocket> UdpSocket::bind(Worker& worker, const SocketAddress& address, const BindOptions& options) {
  const int family = address.family();
  if (family != AF_INET && family != AF_INET6) return Error(EAFNOSUPPORT, "bind: not an IPv4 or IPv6 address");
  const int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return Error(errno, "socket");
  UdpSocket socket(worker, fd);  // closes the fd on every failure below
  if (family == AF_INET6) {
    if (auto set = internal::set_socket_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, options.v6_only ? 1 : 0,
                                               "setsockopt(IPV6_V6ONLY)");
        !set) {
      return set.error();
    }
  }
  if (options.reuse_address) {
    if (auto set = internal::set_socket_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)"); !set) {
      return set.error();
    }
  }
  if (options.reuse_port) {
    if (auto set = internal::set_socket_option(fd, SOL_SOCKET, SO_REUSEPORT, 1, "setsockopt(SO_REUSEPORT)"); !set) {
      return set.error();
    }
  }
  if (::bind(fd, address.data(), address.size()) < 0) return Error(errno, "bind");
  return socket;
}

Result<void> UdpSocket::connect(const SocketAddress& peer) noexcept {
  // A datagram socket's connect only records the peer: it never waits, so no backend operation.
  if (::connect(native_handle(), peer.data(), peer.size()) < 0) return Error(errno, "connect");
  return ok();
}

Result<void> UdpSocket::set_broadcast(bool enabled) noexcept {
  return internal::set_socket_option(native_handle(), SOL_SOCKET, SO_BROADCAST, enabled ? 1 : 0,
                                     "setsockopt(SO_BROADCAST)");
}

Result<void> UdpSocket::set_send_buffer_size(int bytes) noexcept {
  return internal::set_socket_option(native_handle(), SOL_SOCKET, SO_SNDBUF, bytes, "setsockopt(SO_SNDBUF)");
}

Result<void> UdpSocket::set_receive_buffer_size(int bytes) noexcept {
  return internal::set_socket_option(native_handle(), SOL_SOCKET, SO_RCVBUF, bytes, "setsockopt(SO_RCVBUF)");
}

Result<int> UdpSocket::receive_buffer_size() const noexcept {
  int bytes = 0;
  socklen_t size = sizeof(bytes);
  if (::getsockopt(native_handle(), SOL_SOCKET, SO_RCVBUF, &bytes, &size) < 0) return Error(errno, "getsockopt(SO_RCVBUF)");
  return bytes;
}

Result<SocketAddress> UdpSocket::local_addr() const { return SocketAddress::local_of(native_handle()); }

Result<SocketAddress> UdpSocket::peer_addr() const { return SocketAddress::peer_of(native_handle()); }

Result<UdpReceivedFrom> UdpSocket::RecvFromAwaitable::await_resume() const noexcept {
  if (refused()) return Error(EINVAL, kMixedDatagramReads);
  if (result < 0) return error_for(result, "recvmsg");
  auto source = SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&source_), header_.msg_namelen);
  if (!source) return Error(source.error().code(), "recvmsg: source address");
  return UdpReceivedFrom{static_cast<std::size_t>(result), (header_.msg_flags & MSG_TRUNC) != 0, *source};
}

Result<UdpBorrowedDatagram> UdpSocket::RecvBorrowedAwaitable::await_resume() noexcept {
  if (result < 0) return error_for(result, "recvmsg");
  taken_ = true;  // the loan is the caller's from here, whatever happens below
  BorrowedBuffer payload(worker(), buffer_id, static_cast<const std::byte*>(buffer), static_cast<std::size_t>(result));
  auto source = SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&source_), header_.msg_namelen);
  if (!source) return Error(source.error().code(), "recvmsg: source address");  // `payload` goes back
  return UdpBorrowedDatagram{std::move(payload), (header_.msg_flags & MSG_TRUNC) != 0, *source};
}

UdpSocket::SendSegmentsAwaitable::SendSegmentsAwaitable(Worker& worker, int fd, ConstBuffer data,
                                                        std::size_t segment_size,
                                                        const std::optional<SocketAddress>& destination,
                                                        bool gso) noexcept
    : DatagramAwaitable(worker, OpCode::kSendMsg, fd, const_cast<void*>(data.data), data.size),
      destination_(destination),
      base_(static_cast<const std::byte*>(data.data)),
      total_(data.size),
      segment_size_(segment_size),
      gso_(gso) {
  complete = &on_sent;
  set_multi_step();
  if (destination_) {
    header_.msg_name = const_cast<sockaddr*>(destination_->data());
    header_.msg_namelen = destination_->size();
  }
  if (segment_size_ == 0 || segment_size_ > kMaxDatagram) {
    refuse(-EINVAL);
    return;
  }
  if (total_ > 0) prepare_next();
}

void UdpSocket::SendSegmentsAwaitable::prepare_next() noexcept {
  const std::size_t remaining = total_ - sent_;
  std::size_t chunk = std::min(remaining, segment_size_);
  if (gso_ && remaining > segment_size_) {
    // As many whole segments as one super-datagram may hold; the last segment of all may be short.
    const std::size_t per_send = std::max<std::size_t>(
        1, std::min(kMaxSegmentsPerSend, kMaxSendBytes / segment_size_));
    chunk = std::min(remaining, per_send * segment_size_);
  }
  iovec_.iov_base = const_cast<std::byte*>(base_ + sent_);
  iovec_.iov_len = chunk;
  length = chunk;
  in_flight_bytes_ = chunk;
  if (chunk > segment_size_) {
    header_.msg_control = control_;
    header_.msg_controllen = sizeof(control_);
    cmsghdr* control = CMSG_FIRSTHDR(&header_);
    control->cmsg_level = SOL_UDP;
    control->cmsg_type = UDP_SEGMENT;
    control->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
    const auto segment = static_cast<std::uint16_t>(segment_size_);
    std::memcpy(CMSG_DATA(control), &segment, sizeof(segment));
  } else {
    header_.msg_control = nullptr;
    header_.msg_controllen = 0;
  }
}

void UdpSocket::SendSegmentsAwaitable::on_sent(Operation& operation) noexcept {
  auto& self = static_cast<SendSegmentsAwaitable&>(operation);
  if (is_transient(self.result)) {  // a full send buffer (EAGAIN) waits for room, then goes on
    self.resubmit();
    return;
  }
  if (self.result == -EIO && self.gso_ && self.in_flight_bytes_ > self.segment_size_) {
    // The route's device cannot offload UDP checksums, which GSO needs: send this call's datagrams one
    // by one instead.
    self.gso_ = false;
    self.prepare_next();
    self.resubmit();
    return;
  }
  if (self.result >= 0) {
    self.sent_ += self.in_flight_bytes_;  // a datagram send is all or nothing
    if (self.sent_ < self.total_) {
      self.prepare_next();
      self.resubmit();  // stops here instead if the deadline passed or cancellation was requested
      return;
    }
  }
  self.resume_awaiter();
}

TransferResult UdpSocket::SendSegmentsAwaitable::await_resume() const noexcept {
  if (refused()) return TransferResult(Error(EINVAL, "send_segments: segment size must be 1..65507"), 0);
  if (sent_ == total_) return TransferResult(total_);
  return TransferResult(error_for(result < 0 ? result : -EIO, "sendmsg"), sent_);
}

}  // namespace surge
