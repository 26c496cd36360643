// serve.h: serve(), one TCP address served on every worker of a Runtime, with graceful shutdown.
//
//   auto runtime = surge::Runtime::create({.workers = 0});             // one worker per CPU
//   auto server = surge::serve(**runtime, *surge::SocketAddress::parse("0.0.0.0:8080"),
//                              [](surge::TcpStream stream) -> surge::Task<void> {
//                                (void)co_await surge::examples::echo_session(std::move(stream));
//                              });
//   if (!server) return fail(server.error());                         // e.g. "bind: Address already in use"
//   ... wait for SIGTERM (sigwait) ...
//   (*server)->shutdown(std::chrono::seconds(5));   // stop accepting, drain up to 5 s, cancel the rest
//
// Each worker gets its own listening socket (SO_REUSEPORT, all bound to the same port; the kernel spreads
// incoming connections over them by a hash of the 4-tuple), created on that worker. A connection stays on
// the worker that accepted it and runs there as a task of its own: `handler(std::move(stream))`.
//
// The handler is copied once per worker; each copy is called, and the tasks it returns run, only on its
// worker's thread, so it needs no locking of its own. The copies live until the Server is destroyed, so a
// capturing coroutine lambda is fine (its captures outlive every connection task). A handler's task that
// throws ends its connection; the exception is dropped.
//
// Accept errors never stop the server: ECONNABORTED is retried at once; anything else (EMFILE, ENFILE,
// ENOBUFS, ...) after ServeOptions::accept_backoff, so that a full fd table does not spin the worker.
//
// Shutdown, on each worker: the listener is closed (new connections are refused), open connections may
// finish until the deadline; then every one still open is cancelled (its task's current await, and each
// one after it, completes with ECANCELED) and shutdown waits for their tasks to return. It waits on a
// per-worker count of running tasks, woken when it reaches zero: no polling. A handler that ignores
// ECANCELED and keeps going without awaiting holds the shutdown up; one that awaits sees ECANCELED.
//
// Threads: serve(), shutdown() and ~Server() block, so they are for a thread that is not a worker
// (main(), typically; serve() refuses one of its runtime's workers with EDEADLK, shutdown() asserts).
// shutdown_async() is the same from a task on any worker of the runtime.
// counts(), local_addr() and workers() from any thread. The Server must be destroyed before its Runtime.
#ifndef SURGE_NET_SERVE_H_
#define SURGE_NET_SERVE_H_

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "net/socket_address.h"
#include "net/tcp_stream.h"
#include "runtime/result.h"
#include "runtime/runtime.h"
#include "runtime/task.h"
#include "runtime/worker.h"

namespace surge {

namespace internal {
struct ServeSlot;  // one worker's listener, connections and counts (serve.cc)
}  // namespace internal

// Runs one accepted connection; the connection is open until the returned task has returned and dropped
// the stream. Copied once per worker (see the top of this file).
using ConnectionHandler = std::function<Task<void>(TcpStream)>;

struct ServeOptions {
  int backlog = SOMAXCONN;  // each worker's listen(2) backlog
  // The pause after an accept error other than ECONNABORTED (out of fds, of memory, ...).
  std::chrono::milliseconds accept_backoff{10};
};

class Server {
 public:
  using Clock = Worker::Clock;

  // One worker's connections: accepted since serve(), and open now (accepted, their task not yet
  // returned). Read with relaxed atomics: each figure is exact, the pair is not a snapshot.
  struct Counts {
    std::uint64_t accepted = 0;
    std::uint64_t open = 0;
  };

  // shutdown(Clock::now()) if not already done: cancels open connections and waits for their tasks.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The address every worker's listener is bound to, with the port the kernel chose for port 0.
  const SocketAddress& local_addr() const noexcept { return local_addr_; }
  // The number of workers served (the Runtime's size() when serve() ran); counts() takes 0..workers()-1.
  std::size_t workers() const noexcept { return slots_.size(); }
  // The connection counts of worker `worker` (the worker's Worker::index()). Any thread.
  Counts counts(std::size_t worker) const noexcept;
  // The sum over every worker. Any thread.
  Counts total() const noexcept;

  // Graceful shutdown (see the top of this file): returns once every listener is closed and every
  // connection task has returned. Blocks; from a thread that is not a worker. A second
  // call (also concurrent with the first) is harmless and returns once nothing is left. If the Runtime
  // shuts down meanwhile, its shutdown ends the tasks and this returns.
  void shutdown(Clock::time_point deadline);
  void shutdown(std::chrono::nanoseconds grace) { shutdown(Clock::now() + grace); }

  // The same, awaited from a task on any worker. Cancelling the awaiting task cancels every connection
  // at once and returns without waiting for them (~Server still waits).
  Task<void> shutdown_async(Clock::time_point deadline);

 private:
  friend Result<std::unique_ptr<Server>> serve(Runtime&, const SocketAddress&, ConnectionHandler,
                                                const ServeOptions&);
  Server(Runtime& runtime, const SocketAddress& address) noexcept;  // in serve.cc, where ServeSlot is complete

  Runtime* runtime_;
  SocketAddress local_addr_;
  std::vector<std::unique_ptr<internal::ServeSlot>> slots_;  // slots_[i] belongs to runtime_->worker(i)
};

// Binds `address` on every worker of `runtime` (the first worker's listener first, so that port 0 picks
// one port for all) and starts accepting. Fails, with nothing left listening, if any bind fails: the
// error names the call ("bind: Address already in use", "listen: ..."). Blocks until every listener is
// bound; call it from a thread that is not one of `runtime`'s workers (else EDEADLK).
[[nodiscard]] Result<std::unique_ptr<Server>> serve(Runtime& runtime, const SocketAddress& address,
                                                    ConnectionHandler handler, const ServeOptions& options = {});

}  // namespace surge

#endif  // SURGE_NET_SERVE_H_
