#include "net/serve.h"

#include <cassert>
#include <cerrno>
#include <coroutine>
#include <exception>
#include <future>
#include <optional>
#include <utility>

#include "net/tcp_listener.h"
#include "runtime/internal/cancel_slot.h"
#include "runtime/internal/intrusive_list.h"
#include "runtime/time.h"
#include "runtime/when.h"

namespace surge {
namespace {

using internal::cancel_slot_of;
using internal::CancelSlot;
using internal::WorkerAccess;

// Awaiting it does not suspend: it returns the CancelSlot of the awaiting chain, which the server keeps
// so that it can cancel the task later from its worker's thread (what JoinHandle::cancel() does there).
struct CurrentCancelSlot {
  CancelSlot* slot = nullptr;
  bool await_ready() const noexcept { return false; }
  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    slot = cancel_slot_of(self);
    return false;
  }
  CancelSlot* await_resume() const noexcept { return slot; }
};

}  // namespace

namespace internal {

// One connection task, registered while it runs. Lives in the task's coroutine frame.
struct ConnectionEntry {
  CancelSlot* cancel = nullptr;
  ConnectionEntry* previous = nullptr;
  ConnectionEntry* next = nullptr;
};

// A task waiting for its worker's tasks of this server to reach zero (IdleAwaitable). In its frame.
struct IdleWaiter {
  std::coroutine_handle<> coroutine;
  CancelSlot* cancel = nullptr;
  IdleWaiter* previous = nullptr;
  IdleWaiter* next = nullptr;
  bool linked = false;
};

struct ServeSlot {
  ServeSlot(Worker& home, ConnectionHandler connection_handler, const ServeOptions& serve_options)
      : worker(&home), handler(std::move(connection_handler)), options(serve_options) {}

  // Set once, then only read.
  Worker* const worker;
  ConnectionHandler handler;  // this worker's copy
  const ServeOptions options;

  // Written by the owner, read by any thread (counts()).
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> open{0};

  // The owner thread's alone.
  std::optional<TcpListener> listener;
  CancelSlot* accept_cancel = nullptr;  // the accept loop's chain, while it runs
  bool stopping = false;    // shutdown has begun: accept no more
  bool cancelling = false;  // past the deadline: cancel every connection, also those not started yet
  std::size_t tasks = 0;    // the accept loop (while it runs) and every open connection
  IntrusiveList<ConnectionEntry, &ConnectionEntry::previous, &ConnectionEntry::next> connections;
  IntrusiveList<IdleWaiter, &IdleWaiter::previous, &IdleWaiter::next> idle_waiters;

  // A task of this server ended; the last one wakes every idle waiter.
  void task_ended(bool connection) noexcept {
    if (connection) open.fetch_sub(1, std::memory_order_relaxed);
    if (--tasks != 0) return;
    while (!idle_waiters.empty()) {
      IdleWaiter& waiter = *idle_waiters.front();
      idle_waiters.remove(waiter);
      waiter.linked = false;
      if (waiter.cancel != nullptr) waiter.cancel->clear();
      WorkerAccess::schedule(*worker, waiter.coroutine);
    }
  }

  // Closes the listener (the kernel refuses new connections from here on) and ends the accept loop.
  void stop_accepting() noexcept {
    stopping = true;
    if (accept_cancel != nullptr) accept_cancel->request();  // also cuts an accept_backoff pause short
    if (listener) (void)listener->close();                   // an accept in flight ends with ECANCELED
  }

  // Cancels every connection task; those accepted but not started yet cancel themselves as they start.
  void cancel_connections() {
    cancelling = true;
    // Collected first: a cancel handler must not find the list changing under for_each.
    std::vector<CancelSlot*> slots;
    slots.reserve(connections.size());
    connections.for_each([&slots](ConnectionEntry& entry) { slots.push_back(entry.cancel); });
    for (CancelSlot* slot : slots) slot->request();
  }
};

}  // namespace internal

namespace {

using internal::ConnectionEntry;
using internal::IdleWaiter;
using Slot = internal::ServeSlot;

// Counts one task of a slot (Slot::tasks, and Slot::open for a connection) from construction until
// destruction: a coroutine parameter or local, so the count drops when the frame goes, however it goes
// (returned, or destroyed unfinished by the Runtime's shutdown). Owner thread only.
class TaskCount {
 public:
  TaskCount(Slot& slot, bool connection) noexcept : slot_(&slot), connection_(connection) {
    ++slot.tasks;
    if (connection) slot.open.fetch_add(1, std::memory_order_relaxed);
  }
  TaskCount(TaskCount&& other) noexcept : slot_(std::exchange(other.slot_, nullptr)), connection_(other.connection_) {}
  TaskCount& operator=(TaskCount&&) = delete;
  ~TaskCount() {
    if (slot_ != nullptr) slot_->task_ended(connection_);
  }

 private:
  Slot* slot_;
  bool connection_;
};

// Resumes once the slot has no task left; at once if cancelled (its chain's CancelSlot).
class IdleAwaitable {
 public:
  explicit IdleAwaitable(Slot& slot) noexcept : slot_(slot) {}
  IdleAwaitable(const IdleAwaitable&) = delete;
  IdleAwaitable& operator=(const IdleAwaitable&) = delete;
  // Destroyed while waiting (its task destroyed by the Runtime's shutdown): leave the list.
  ~IdleAwaitable() {
    if (waiter_.linked) {
      slot_.idle_waiters.remove(waiter_);
      if (waiter_.cancel != nullptr) waiter_.cancel->clear();
    }
  }

  bool await_ready() const noexcept { return slot_.tasks == 0; }
  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    waiter_.coroutine = self;
    waiter_.cancel = cancel_slot_of(self);
    if (waiter_.cancel != nullptr) {
      if (waiter_.cancel->requested()) return false;
      waiter_.cancel->install(&on_cancel, this);
    }
    slot_.idle_waiters.push_front(waiter_);
    waiter_.linked = true;
    return true;
  }
  void await_resume() const noexcept {}

 private:
  static void on_cancel(void* context) noexcept {
    auto& self = *static_cast<IdleAwaitable*>(context);
    self.slot_.idle_waiters.remove(self.waiter_);
    self.waiter_.linked = false;
    WorkerAccess::schedule(*self.slot_.worker, self.waiter_.coroutine);
  }

  Slot& slot_;
  IdleWaiter waiter_;
};

// One accepted connection: registered for cancellation while it runs, counted while its frame exists.
Task<void> run_connection(Slot& slot, TcpStream stream, TaskCount count) {
  ConnectionEntry entry;
  entry.cancel = co_await CurrentCancelSlot{};
  slot.connections.push_front(entry);
  struct Unlink {
    Slot& slot;
    ConnectionEntry& entry;
    ~Unlink() { slot.connections.remove(entry); }
  } unlink{slot, entry};
  if (slot.cancelling) entry.cancel->request();  // accepted before the deadline, started after it
  try {
    co_await slot.handler(std::move(stream));
  } catch (...) {
    // The handler's failure ends its connection only (see serve.h).
  }
}

// Reports the outcome of binding to serve(), which waits for it: also if the task is destroyed before it
// could (the Runtime shutting down), from the frame's destructor.
class BindReport {
 public:
  explicit BindReport(std::promise<Result<SocketAddress>>* promise) noexcept : promise_(promise) {}
  BindReport(BindReport&& other) noexcept : promise_(std::exchange(other.promise_, nullptr)) {}
  BindReport& operator=(BindReport&&) = delete;
  ~BindReport() {
    if (promise_ != nullptr) promise_->set_value(Error(ECANCELED, "serve: the runtime shut down"));
  }
  // serve() may return as soon as this has been called: no access after it.
  void set(Result<SocketAddress> outcome) { std::exchange(promise_, nullptr)->set_value(std::move(outcome)); }

 private:
  std::promise<Result<SocketAddress>>* promise_;
};

// Binds this worker's listener, reports, then accepts until shutdown, spawning a connection task for
// each accepted stream on this worker.
Task<void> accept_loop(Slot& slot, SocketAddress address, BindReport report) {
  TaskCount count(slot, false);
  slot.accept_cancel = co_await CurrentCancelSlot{};
  struct Forget {
    Slot& slot;
    ~Forget() { slot.accept_cancel = nullptr; }
  } forget{slot};
  auto listener = TcpListener::bind(*slot.worker, address,
                                    {.backlog = slot.options.backlog, .reuse_address = true, .reuse_port = true});
  if (!listener) {
    report.set(listener.error());
    co_return;
  }
  auto bound = listener->local_addr();
  if (!bound) {
    report.set(bound.error());
    co_return;
  }
  slot.listener.emplace(std::move(*listener));
  report.set(*bound);
  while (!slot.stopping) {
    auto stream = co_await slot.listener->accept();
    if (slot.stopping) break;  // a connection accepted as the listener closed is closed with it
    if (stream) {
      slot.accepted.fetch_add(1, std::memory_order_relaxed);
      (void)slot.worker->spawn(run_connection(slot, std::move(*stream), TaskCount(slot, true)));  // detached
      continue;
    }
    if (stream.error().code() == ECONNABORTED) continue;  // that one connection is gone; the next may be fine
    // Out of fds or memory, or worse: accepting again at once would only spin. Pause, then go on.
    if (!co_await sleep_for(slot.options.accept_backoff)) break;  // cancelled: shutting down
  }
  slot.listener.reset();
}

// One worker's part of a shutdown: on that worker.
Task<void> drain(Slot& slot, Server::Clock::time_point deadline) {
  slot.stop_accepting();
  if (slot.tasks != 0) (void)co_await when_any(IdleAwaitable(slot), sleep_until(deadline));
  slot.cancel_connections();
  co_await IdleAwaitable(slot);
}

}  // namespace

Server::Server(Runtime& runtime, const SocketAddress& address) noexcept : runtime_(&runtime), local_addr_(address) {}

Server::~Server() { shutdown(Clock::now()); }

Server::Counts Server::counts(std::size_t worker) const noexcept {
  const internal::ServeSlot& slot = *slots_[worker];
  return {slot.accepted.load(std::memory_order_relaxed), slot.open.load(std::memory_order_relaxed)};
}

Server::Counts Server::total() const noexcept {
  Counts sum;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Counts one = counts(i);
    sum.accepted += one.accepted;
    sum.open += one.open;
  }
  return sum;
}

void Server::shutdown(Clock::time_point deadline) {
  assert(Worker::current() == nullptr && "Server::shutdown blocks: call shutdown_async on a worker");
  try {
    runtime_->block_on(shutdown_async(deadline));
  } catch (const std::future_error&) {
    // The Runtime is shutting down (or has): its shutdown destroys what is left of the server's tasks.
  }
}

Task<void> Server::shutdown_async(Clock::time_point deadline) {
  std::vector<JoinHandle<void>> drains;
  drains.reserve(slots_.size());
  for (std::size_t i = 0; i < slots_.size(); ++i) drains.push_back(runtime_->spawn_on(i, drain(*slots_[i], deadline)));
  for (JoinHandle<void>& handle : drains) {
    try {
      co_await std::move(handle);
    } catch (const std::future_error&) {
      // That worker shut down first (see shutdown()).
    }
  }
}

Result<std::unique_ptr<Server>> serve(Runtime& runtime, const SocketAddress& address, ConnectionHandler handler,
                                      const ServeOptions& options) {
  if (Worker* current = Worker::current(); current != nullptr && current->runtime() == &runtime) {
    return Error(EDEADLK, "serve: called on one of the runtime's workers (it blocks until every worker has bound)");
  }
  const std::size_t workers = runtime.size();
  if (workers == 0) return Error(ESHUTDOWN, "serve: the runtime has shut down");
  std::unique_ptr<Server> server(new Server(runtime, address));
  server->slots_.reserve(workers);
  for (std::size_t i = 0; i < workers; ++i) {
    server->slots_.push_back(std::make_unique<internal::ServeSlot>(runtime.worker(i), handler, options));
  }
  // The first listener first: with port 0 it picks the port the others then share.
  SocketAddress bind_to = address;
  for (std::size_t i = 0; i < workers; ++i) {
    std::promise<Result<SocketAddress>> promise;
    std::future<Result<SocketAddress>> bound = promise.get_future();
    (void)runtime.spawn_on(i, accept_loop(*server->slots_[i], bind_to, BindReport(&promise)));  // detached
    Result<SocketAddress> outcome = bound.get();
    if (!outcome) return outcome.error();  // ~Server closes the listeners already bound
    if (i == 0) server->local_addr_ = bind_to = *outcome;
  }
  return server;
}

}  // namespace surge
