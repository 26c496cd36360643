// libuv_echo_server: the libuv 1.44 peer, written the way libuv is used well: one loop, a per-connection
// buffer handed out by alloc_cb, and uv_try_write first (the socket almost always takes the whole echo
// at once); only a short write falls back to uv_write, with reading stopped until it completes so the
// buffer is not overwritten. Protocol in server_common.h.
//
//   libuv_echo_server [--port=0] [--cpu=0] [--buffer=65536]
#include <uv.h>

#include <cstdio>
#include <cstdlib>

#include "bench/servers/server_common.h"
#include "bench/servers/server_flags.h"

namespace surge::bench {
namespace {

constexpr const char* kProgram = "libuv_echo_server";
constexpr const char* kUsage =
    "the libuv peer (one loop, uv_try_write fast path), for //bench:echo_compare. "
    "Listens on 127.0.0.1, prints 'port N', answers 'stats' on stdin with its CPU time and memory, and "
    "exits when stdin closes.\n"
    "Usage: libuv_echo_server [--port=0] [--cpu=-1] [--buffer=65536]";
std::size_t buffer_size = 64 * 1024;

struct Connection {
  uv_tcp_t handle;  // first, so that a uv_handle_t* is a Connection*
  uv_write_t write;
  char* buffer;
};

void on_closed(uv_handle_t* handle) {
  auto* connection = reinterpret_cast<Connection*>(handle);
  delete[] connection->buffer;
  delete connection;
}

void hand_out_buffer(uv_handle_t* handle, std::size_t, uv_buf_t* buffer) {
  auto* connection = reinterpret_cast<Connection*>(handle);
  *buffer = uv_buf_init(connection->buffer, static_cast<unsigned>(buffer_size));
}

void on_read(uv_stream_t* stream, ssize_t received, const uv_buf_t* buffer);

void on_written(uv_write_t* request, int status) {
  auto* stream = request->handle;
  if (status < 0) return uv_close(reinterpret_cast<uv_handle_t*>(stream), on_closed);
  uv_read_start(stream, hand_out_buffer, on_read);
}

void on_read(uv_stream_t* stream, ssize_t received, const uv_buf_t* buffer) {
  if (received < 0) return uv_close(reinterpret_cast<uv_handle_t*>(stream), on_closed);  // EOF or error
  if (received == 0) return;                                                                 // EAGAIN
  uv_buf_t message = uv_buf_init(buffer->base, static_cast<unsigned>(received));
  const int written = uv_try_write(stream, &message, 1);
  if (written == received) return;
  if (written < 0 && written != UV_EAGAIN) return uv_close(reinterpret_cast<uv_handle_t*>(stream), on_closed);
  if (written > 0) message = uv_buf_init(message.base + written, message.len - static_cast<unsigned>(written));
  uv_read_stop(stream);
  auto* connection = reinterpret_cast<Connection*>(stream);
  if (uv_write(&connection->write, stream, &message, 1, on_written) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(stream), on_closed);
  }
}

void on_connection(uv_stream_t* listener, int status) {
  if (status < 0) return;
  auto* connection = new Connection{};
  uv_tcp_init(listener->loop, &connection->handle);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&connection->handle)) != 0) {
    return uv_close(reinterpret_cast<uv_handle_t*>(&connection->handle), on_closed);
  }
  connection->buffer = new char[buffer_size];
  uv_tcp_nodelay(&connection->handle, 1);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&connection->handle), hand_out_buffer, on_read);
}

int main_impl(int argc, char** argv) {
  const ServerFlags flags = parse_server_flags(argc, argv, kUsage);
  buffer_size = flags.buffer_size;
  pin_current_thread(flags.cpu);
  uv_loop_t* loop = uv_default_loop();
  uv_tcp_t listener;
  uv_tcp_init(loop, &listener);
  sockaddr_in address;
  uv_ip4_addr("127.0.0.1", flags.port, &address);
  int result = uv_tcp_bind(&listener, reinterpret_cast<const sockaddr*>(&address), 0);
  if (result == 0) result = uv_listen(reinterpret_cast<uv_stream_t*>(&listener), SOMAXCONN, on_connection);
  if (result != 0) die(kProgram, "listen", -result);
  sockaddr_in bound;
  int length = sizeof(bound);
  uv_tcp_getsockname(&listener, reinterpret_cast<sockaddr*>(&bound), &length);
  start_control_thread();
  announce_port(ntohs(bound.sin_port));
  uv_run(loop, UV_RUN_DEFAULT);
  return 1;
}

}  // namespace
}  // namespace surge::bench

int main(int argc, char** argv) { return surge::bench::main_impl(argc, argv); }
