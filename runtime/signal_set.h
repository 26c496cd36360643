// signal_set.h: SignalSet, await POSIX signals (SIGINT, SIGTERM, ...) as ordinary I/O.
//
// The signals are blocked for the calling thread and read from a signalfd through the worker's backend,
// so a server can await SIGINT next to its sockets and shut down cleanly instead of dying mid-write.
// Create the SignalSet before starting other threads: they inherit the blocked mask, otherwise one of
// them may receive the signal instead. Like a socket, it belongs to one worker and must not outlive it
// (if it does, its fd is still closed, and it is reported: surge::outlived_worker_reports()).
// In a Runtime, prefer surge::ctrl_c() (runtime/ctrl_c.h): the Runtime blocks the signals in all its
// threads and reads them itself.
//
//   auto signals = surge::SignalSet::create(worker, {SIGINT, SIGTERM});
//   ... inside a task on `worker`:
//   surge::Result<int> which = co_await signals->wait();   // SIGINT or SIGTERM
#ifndef SURGE_RUNTIME_SIGNAL_SET_H_
#define SURGE_RUNTIME_SIGNAL_SET_H_

#include <signal.h>
#include <sys/signalfd.h>

#include <initializer_list>

#include "runtime/internal/io_awaitable.h"
#include "runtime/result.h"
#include "runtime/worker.h"

namespace surge {

class SignalSet {
 public:
  class WaitAwaitable;

  // Blocks `signals` in the calling thread and opens a signalfd for them, to be awaited on `worker`.
  static Result<SignalSet> create(Worker& worker, std::initializer_list<int> signals);
  static Result<SignalSet> create(Worker& worker, const sigset_t& mask);

  SignalSet(SignalSet&& other) noexcept;
  SignalSet& operator=(SignalSet&& other) = delete;
  SignalSet(const SignalSet&) = delete;
  ~SignalSet();

  // Waits until one of the signals is delivered and returns its number. Awaited on the worker's thread.
  WaitAwaitable wait() noexcept;

 private:
  SignalSet(Worker& worker, int fd) noexcept : worker_(&worker), fd_(fd) {}

  Worker* worker_;
  int fd_ = -1;
};

class SignalSet::WaitAwaitable : public internal::IoAwaitable {
 public:
  WaitAwaitable(Worker& worker, int fd) noexcept : internal::IoAwaitable(worker, OpCode::kRead, fd) {
    buffer = &info_;
    length = sizeof(info_);
  }
  // The number of the signal that arrived.
  Result<int> await_resume() const noexcept {
    if (result < 0) return error_for(result, "read(signalfd)");
    if (static_cast<std::size_t>(result) != sizeof(info_)) return Error(EIO, "read(signalfd): short read");
    return static_cast<int>(info_.ssi_signo);
  }

 private:
  signalfd_siginfo info_{};
};

inline SignalSet::WaitAwaitable SignalSet::wait() noexcept { return WaitAwaitable(*worker_, fd_); }

}  // namespace surge

#endif  // SURGE_RUNTIME_SIGNAL_SET_H_
