#include "examples/echo.h"

#include <cerrno>
#include <chrono>
#include <memory>

#include "runtime/time.h"

namespace surge::examples {
namespace {

// accept(2) errors that concern one connection or a passing shortage, not the listener itself.
bool accept_error_is_transient(int code) {
  switch (code) {
    case ECONNABORTED:
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
    case EPERM:
    case EPROTO:
    case ENETDOWN:
    case EHOSTUNREACH:
      return true;
    default:
      return false;
  }
}

// What a session does to its stream first: TCP sends each echo at once (no Nagle: an echo waiting for the
// peer's ACK would wait out its delayed-ACK timer); a Unix stream has nothing to set.
void prepare_session(TcpStream& stream) { (void)stream.set_nodelay(true); }
void prepare_session(UnixStream&) {}

template <typename Stream>
Task<Result<void>> echo_loop(Stream stream, std::size_t buffer_size) {
  auto buffer = std::make_unique_for_overwrite<std::byte[]>(buffer_size);  // no need to zero it
  for (;;) {
    auto received = co_await stream.read(MutableBuffer(buffer.get(), buffer_size));
    if (!received) co_return received.error();
    if (*received == 0) co_return ok();
    if (auto sent = co_await stream.write_all(ConstBuffer(buffer.get(), *received)); !sent) {
      co_return sent.error();
    }
  }
}

template <typename Stream>
Task<Result<void>> echo_loop_borrowed(Stream stream) {
  for (;;) {
    auto chunk = co_await stream.read_borrowed();
    if (!chunk) co_return chunk.error();
    if (chunk->empty()) co_return ok();
    if (auto sent = co_await stream.write_all(ConstBuffer(chunk->data(), chunk->size())); !sent) {
      co_return sent.error();
    }
  }  // each chunk's buffer goes back to the worker as `chunk` is destroyed
}

template <typename Listener>
Task<Result<void>> accept_loop(Listener listener, EchoOptions options) {
  for (;;) {
    auto stream = co_await listener.accept();
    if (!stream) {
      if (accept_error_is_transient(stream.error().code())) {
        // Out of fds or memory: accepting again at once would only spin. Give the system a moment.
        if (stream.error().code() != ECONNABORTED) (void)co_await sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      co_return stream.error();
    }
    Worker& worker = stream->worker();
    prepare_session(*stream);
    // Detached: each session ends with its connection.
    if (options.borrowed_reads) {
      (void)worker.spawn(echo_loop_borrowed(std::move(*stream)));
    } else {
      (void)worker.spawn(echo_loop(std::move(*stream), options.buffer_size));
    }
  }
}

}  // namespace

Task<Result<void>> echo_session(TcpStream stream, std::size_t buffer_size) {
  prepare_session(stream);
  return echo_loop(std::move(stream), buffer_size);
}

Task<Result<void>> echo_session_borrowed(TcpStream stream) {
  prepare_session(stream);
  return echo_loop_borrowed(std::move(stream));
}

Task<Result<void>> serve_echo(TcpListener listener, EchoOptions options) {
  return accept_loop<TcpListener>(std::move(listener), options);
}

Task<Result<void>> echo_session(UnixStream stream, std::size_t buffer_size) {
  return echo_loop(std::move(stream), buffer_size);
}

Task<Result<void>> serve_echo(UnixListener listener, EchoOptions options) {
  return accept_loop<UnixListener>(std::move(listener), options);
}

}  // namespace surge::examples
