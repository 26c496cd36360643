#include "runtime/signal_set.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace surge {

Result<SignalSet> SignalSet::create(Worker& worker, std::initializer_list<int> signals) {
  sigset_t mask;
  sigemptyset(&mask);
  for (int signal_number : signals) {
    if (sigaddset(&mask, signal_number) < 0) return Error(errno, "sigaddset");
  }
  return create(worker, mask);
}

Result<SignalSet> SignalSet::create(Worker& worker, const sigset_t& mask) {
  if (const int error = pthread_sigmask(SIG_BLOCK, &mask, nullptr); error != 0) {
    return Error(error, "pthread_sigmask");
  }
  const int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return Error(errno, "signalfd");
  return SignalSet(worker, fd);
}

SignalSet::SignalSet(SignalSet&& other) noexcept
    : worker_(other.worker_), fd_(std::exchange(other.fd_, -1)) {}

SignalSet::~SignalSet() {
  if (fd_ < 0) return;
  // Like a socket (net/internal/owned_socket.cc): the backend is its worker's, so away from home the fd
  // is forgotten and closed there; a gone worker took its backend along, and only the fd is left.
  if (Worker::current() != worker_) {
    const bool home = internal::WorkerAccess::run_at_home(
        worker_, 0,  // any incarnation: the fd stays open until the action runs
        [](Worker& worker, std::uint64_t fd) noexcept {
          internal::WorkerAccess::backend(worker).forget_fd(static_cast<int>(fd));
          close(static_cast<int>(fd));
        },
        static_cast<std::uint64_t>(fd_));
    if (!home) {
      internal::WorkerAccess::report_outlived("SignalSet");
      close(fd_);
    }
    return;
  }
  internal::WorkerAccess::backend(*worker_).forget_fd(fd_);
  close(fd_);
}

}  // namespace surge
