#include "examples/udp_echo.h"

#include <memory>
#include <vector>

#include "runtime/task_group.h"

namespace surge::examples {
namespace {

// Transient for a datagram socket: an ICMP error left by an earlier send (Linux reports these on an
// unconnected socket only with IP_RECVERR, but a connected peer may have gone).
bool keep_serving(const Error& error) noexcept {
  return error.code() == ECONNREFUSED || error.code() == EHOSTUNREACH || error.code() == ENETUNREACH ||
         error.code() == ENOBUFS || error.code() == ENOMEM;
}

Task<Result<void>> echo_loop(UdpSocket& socket, UdpEchoOptions options) {
  std::unique_ptr<std::byte[]> own;
  if (!options.borrowed) own = std::make_unique<std::byte[]>(64 * 1024);
  for (;;) {
    if (options.borrowed) {
      auto datagram = co_await socket.recv_borrowed();
      if (!datagram) {
        if (keep_serving(datagram.error())) continue;
        co_return datagram.error();
      }
      if (datagram->truncated) continue;
      if (auto sent = co_await socket.send_to(datagram->payload.bytes(), datagram->source); !sent) {
        if (sent.error().is_cancelled()) co_return sent.error();
        continue;
      }
    } else {
      auto received = co_await socket.recv_from(MutableBuffer(own.get(), 64 * 1024));
      if (!received) {
        if (keep_serving(received.error())) continue;
        co_return received.error();
      }
      if (received->truncated) continue;
      if (auto sent = co_await socket.send_to(ConstBuffer(own.get(), received->size), received->source); !sent) {
        if (sent.error().is_cancelled()) co_return sent.error();
        continue;
      }
    }
    if (options.echoed != nullptr) options.echoed->fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace

Task<Result<void>> serve_udp_echo(UdpSocket socket, UdpEchoOptions options) {
  TaskGroup loops;
  Error failure(ECANCELED, "serve_udp_echo");  // the first loop's error that was not a cancellation
  const int count = options.loops > 0 ? options.loops : options.borrowed ? 64 : 16;
  for (int i = 0; i < count; ++i) {
    loops.spawn([](UdpSocket& shared, UdpEchoOptions each, TaskGroup& group, Error& first) -> Task<void> {
      auto ended = co_await echo_loop(shared, each);
      if (!ended && !ended.error().is_cancelled() && first.is_cancelled()) {
        first = ended.error();
        group.cancel();  // one fails for good: all stop
      }
    }(socket, options, loops, failure));
  }
  (void)co_await loops.join();  // cancelling this task cancels the loops and waits for them
  co_return failure;
}

}  // namespace surge::examples
