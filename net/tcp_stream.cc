#include "net/tcp_stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <limits>

#include "net/resolve.h"

namespace surge {
namespace {

// Connects an already-created socket: one IoAwaitable carrying the address inside the frame.
class ConnectAwaitable : public internal::IoAwaitable {
 public:
  ConnectAwaitable(Worker& worker, int fd, const SocketAddress& target) noexcept
      : internal::IoAwaitable(worker, OpCode::kConnect, fd), address_(target) {
    buffer = const_cast<sockaddr*>(address_.data());
    address_length = address_.size();
    owned_fd = true;
  }
  Result<void> await_resume() const noexcept {
    if (result < 0) return error_for(result, "connect");
    return ok();
  }

 private:
  SocketAddress address_;
};

}  // namespace

Task<Result<TcpStream>> TcpStream::connect(SocketAddress address) {
  Worker* worker = Worker::current();
  if (worker == nullptr) co_return Error(EINVAL, "connect: not called from a task on a surge worker");
  auto socket = internal::open_stream_socket(*worker, address.family());
  if (!socket) co_return socket.error();
  if (auto connected = co_await ConnectAwaitable(*worker, socket->fd(), address); !connected) {
    co_return connected.error();  // the socket closes as it goes out of scope
  }
  co_return TcpStream(std::move(*socket));
}

Task<Result<TcpStream>> TcpStream::connect(std::string_view address) {
  auto numeric = SocketAddress::parse(address);
  if (numeric) co_return co_await connect(*numeric);
  auto parts = SocketAddress::split_host_port(address);
  if (!parts) co_return parts.error();
  if (parts->bracketed) co_return numeric.error();  // brackets hold an IPv6 literal, never a name
  auto candidates = co_await resolve(std::string(parts->host), parts->port);
  if (!candidates) co_return candidates.error();
  // Try each address in getaddrinfo's order; report the last failure if none connects.
  Error last_failure(EHOSTUNREACH, "connect");
  for (const SocketAddress& candidate : *candidates) {
    auto stream = co_await connect(candidate);
    if (stream) co_return stream;
    last_failure = stream.error();
  }
  co_return last_failure;
}

Result<void> TcpStream::shutdown(Shutdown how) noexcept { return internal::shutdown_socket(native_handle(), how); }

Result<SocketAddress> TcpStream::local_addr() const { return SocketAddress::local_of(native_handle()); }

Result<SocketAddress> TcpStream::peer_addr() const { return SocketAddress::peer_of(native_handle()); }

Result<void> TcpStream::set_nodelay(bool enabled) noexcept {
  return internal::set_socket_option(native_handle(), IPPROTO_TCP, TCP_NODELAY, enabled ? 1 : 0,
                                     "setsockopt(TCP_NODELAY)");
}

Result<void> TcpStream::set_linger(std::optional<std::chrono::seconds> linger) noexcept {
  ::linger value{};
  if (linger) {
    if (linger->count() < 0 || linger->count() > std::numeric_limits<int>::max()) {
      return Error(EINVAL, "setsockopt(SO_LINGER)");
    }
    value.l_onoff = 1;
    value.l_linger = static_cast<int>(linger->count());
  }
  return internal::set_socket_option(native_handle(), SOL_SOCKET, SO_LINGER, value, "setsockopt(SO_LINGER)");
}

Result<void> TcpStream::set_send_buffer_size(int bytes) noexcept {
  return internal::set_socket_option(native_handle(), SOL_SOCKET, SO_SNDBUF, bytes, "setsockopt(SO_SNDBUF)");
}

Result<void> TcpStream::set_receive_buffer_size(int bytes) noexcept {
  return internal::set_socket_option(native_handle(), SOL_SOCKET, SO_RCVBUF, bytes, "setsockopt(SO_RCVBUF)");
}

Result<void> TcpStream::abort() noexcept {
  if (!is_open()) return ok();
  // A zero linger timeout turns close(2) into a reset: the kernel drops the send queue and sends RST.
  Result<void> lingered = set_linger(std::chrono::seconds(0));
  Result<void> closed = socket_.close();  // forgets the fd in the backend first, like close()
  if (!lingered) return lingered.error();
  return closed;
}

}  // namespace surge
