// echo.h: the TCP echo service used by the example binaries, the tests and the benchmarks; the same
// service on Unix stream sockets (UnixListener/UnixStream).
//
//   auto listener = surge::TcpListener::bind(address);
//   worker.spawn(surge::examples::serve_echo(std::move(*listener)));   // runs until cancelled
#ifndef SURGE_EXAMPLES_ECHO_H_
#define SURGE_EXAMPLES_ECHO_H_

#include <cstddef>
#include <cstdint>

#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "net/unix_listener.h"
#include "net/unix_stream.h"
#include "runtime/result.h"
#include "runtime/task.h"

namespace surge::examples {

struct EchoOptions {
  std::size_t buffer_size = 64 * 1024;  // each session's own buffer (unused with borrowed_reads)
  // Receive into buffers the runtime lends (TcpStream::read_borrowed) instead of a buffer per session:
  // on io_uring one multishot recv per connection and a provided-buffer ring per worker.
  bool borrowed_reads = false;
};

// Echoes everything `stream` sends until it closes its side; returns why the session ended (ok at EOF).
Task<Result<void>> echo_session(TcpStream stream, std::size_t buffer_size = 64 * 1024);
// The same with borrowed reads: each received chunk is sent back from the lent buffer it landed in.
Task<Result<void>> echo_session_borrowed(TcpStream stream);

// Accepts connections forever and spawns an echo session (as `options` say) for each on the listener's
// worker. Returns only on an accept error that retrying cannot fix (ECONNABORTED is retried at once; a
// full fd table and the like after a 10 ms pause, so that the loop does not spin).
Task<Result<void>> serve_echo(TcpListener listener, EchoOptions options = {});

// The same on a Unix stream socket (borrowed_reads applies as well). The listener, and with it its socket
// file (see unix_listener.h), goes when the task ends or is destroyed.
Task<Result<void>> echo_session(UnixStream stream, std::size_t buffer_size = 64 * 1024);
Task<Result<void>> serve_echo(UnixListener listener, EchoOptions options = {});

}  // namespace surge::examples

#endif  // SURGE_EXAMPLES_ECHO_H_
