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
  internal::WorkerAccess::backend(*worker_).forget_fd(fd_);
  close(fd_);
}

}  // namespace surge
