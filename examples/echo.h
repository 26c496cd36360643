// echo.h: the TCP echo service used by the example binaries, the tests and the benchmarks.
//
//   auto listener = surge::TcpListener::bind(address);
//   worker.spawn(surge::examples::serve_echo(std::move(*listener)));   // runs until cancelled
#ifndef SURGE_EXAMPLES_ECHO_H_
#define SURGE_EXAMPLES_ECHO_H_

#include <cstddef>
#include <cstdint>

#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/result.h"
#include "runtime/task.h"

namespace surge::examples {

// Echoes everything `stream` sends until it closes its side; returns why the session ended (ok at EOF).
Task<Result<void>> echo_session(TcpStream stream, std::size_t buffer_size = 64 * 1024);

// Accepts connections forever and spawns an echo_session for each on the listener's worker. Returns only
// on an accept error that retrying cannot fix (a full fd table, ECONNABORTED and the like are retried).
Task<Result<void>> serve_echo(TcpListener listener);

}  // namespace surge::examples

#endif  // SURGE_EXAMPLES_ECHO_H_
