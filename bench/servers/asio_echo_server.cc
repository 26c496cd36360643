// asio_echo_server: the Boost.Asio 1.81 peer, written as Asio's own C++20-coroutine echo example is: one
// io_context on one thread, co_spawn per connection, async_read_some then async_write. Built twice:
// asio_epoll_echo_server (Asio's default reactor) and asio_io_uring_echo_server (BOOST_ASIO_HAS_IO_URING
// with BOOST_ASIO_DISABLE_EPOLL, so that sockets go through io_uring too). Errors come back as values
// (as_tuple), so no exception is thrown on the I/O path. Protocol in server_common.h.
// With --udp it echoes UDP datagrams instead (bench/echo_compare's udp workload): one udp::socket, and
// --udp_loops coroutines each async_receive_from then async_send_to (one loop is Asio's own example;
// several keep as many datagrams in hand as surge's serve_udp_echo does).
//
//   asio_epoll_echo_server [--port=0] [--cpu=0] [--buffer=65536] [--udp [--udp_loops=16]]
#include <boost/asio.hpp>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "absl/flags/flag.h"
#include "bench/servers/server_common.h"
#include "bench/servers/server_flags.h"

ABSL_FLAG(bool, udp, false, "echo UDP datagrams instead of TCP, 0 or 1");
ABSL_FLAG(int, udp_loops, 16, "with --udp: receive-and-send coroutines on the socket, 1 to 1024");

namespace surge::bench {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
inline const auto kAsTuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> echo_session(tcp::socket socket, std::size_t buffer_size) {
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  std::unique_ptr<char[]> buffer(new char[buffer_size]);
  for (;;) {
    auto [read_error, received] = co_await socket.async_read_some(asio::buffer(buffer.get(), buffer_size), kAsTuple);
    if (read_error) co_return;
    auto [write_error, sent] = co_await asio::async_write(socket, asio::buffer(buffer.get(), received), kAsTuple);
    if (write_error) co_return;
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, std::size_t buffer_size) {
  for (;;) {
    auto [error, socket] = co_await acceptor.async_accept(kAsTuple);
    if (error) continue;  // ECONNABORTED and the like concern one connection
    asio::co_spawn(acceptor.get_executor(), echo_session(std::move(socket), buffer_size), asio::detached);
  }
}

asio::awaitable<void> udp_echo_loop(asio::ip::udp::socket& socket) {
  std::unique_ptr<char[]> buffer(new char[64 * 1024]);
  asio::ip::udp::endpoint peer;
  for (;;) {
    auto [read_error, received] =
        co_await socket.async_receive_from(asio::buffer(buffer.get(), 64 * 1024), peer, kAsTuple);
    if (read_error) continue;
    [[maybe_unused]] auto [write_error, sent] = co_await socket.async_send_to(asio::buffer(buffer.get(), received), peer, kAsTuple);
  }
}

[[noreturn]] void serve_udp(const ServerFlags& flags) {
  asio::io_context context(1);
  boost::system::error_code error;
  asio::ip::udp::socket socket(context);
  const asio::ip::udp::endpoint endpoint(asio::ip::address_v4::loopback(), flags.port);
  socket.open(endpoint.protocol(), error);
  if (!error) socket.bind(endpoint, error);
  if (error) die(PROGRAM_NAME, "bind", error.value());
  const int loops = std::max(1, std::min(1024, absl::GetFlag(FLAGS_udp_loops)));
  for (int i = 0; i < loops; ++i) asio::co_spawn(context, udp_echo_loop(socket), asio::detached);
  start_control_thread();
  announce_port(socket.local_endpoint().port());
  context.run();
  die(PROGRAM_NAME, "io_context ended", 0);
}

int main_impl(int argc, char** argv) {
  const ServerFlags flags = parse_server_flags(
      argc, argv,
      "the Boost.Asio peer (C++20 coroutines, one io_context on one thread), for //bench:echo_compare. "
      "Listens on 127.0.0.1, prints 'port N', answers 'stats' on stdin with its CPU time and memory, and "
      "exits when stdin closes.\n"
      "With --udp it echoes UDP datagrams instead.\n"
      "Usage: " PROGRAM_NAME " [--port=0] [--cpu=-1] [--buffer=65536] [--udp] [--udp_loops=16]");
  pin_current_thread(flags.cpu);
  if (absl::GetFlag(FLAGS_udp)) serve_udp(flags);
  asio::io_context context(1);  // concurrency hint 1: one thread runs it, so Asio may skip its locks
  boost::system::error_code error;
  tcp::acceptor acceptor(context);
  const tcp::endpoint endpoint(asio::ip::address_v4::loopback(), flags.port);
  acceptor.open(endpoint.protocol(), error);
  if (!error) acceptor.set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) acceptor.bind(endpoint, error);
  if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) die(PROGRAM_NAME, "listen", error.value());
  asio::co_spawn(context, accept_loop(acceptor, flags.buffer_size), asio::detached);
  start_control_thread();
  announce_port(acceptor.local_endpoint().port());
  context.run();
  return 1;
}

}  // namespace
}  // namespace surge::bench

int main(int argc, char** argv) { return surge::bench::main_impl(argc, argv); }
