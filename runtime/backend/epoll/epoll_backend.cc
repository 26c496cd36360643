#include "runtime/backend/epoll/epoll_backend.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <vector>

#include "runtime/backend/internal/operation_access.h"
#include "runtime/backend/internal/syscall_limits.h"

namespace surge {

using internal::OperationAccess;
namespace {

// Operation::backend_state values.
constexpr std::uint32_t kStateIdle = 0;
constexpr std::uint32_t kStateWaiting = 1;    // queued on its fd until epoll says ready
constexpr std::uint32_t kStateCompleted = 2;  // result known, delivered by the next poll()
constexpr std::uint32_t kStateOffloaded = 3;  // a file operation, queued or running on the blocking pool
// Set on a connect whose first connect(2) said EINPROGRESS: later attempts ask SO_ERROR instead.
constexpr std::uint32_t kFlagConnectStarted = 0x100;
constexpr std::uint32_t kStateMask = 0xff;

constexpr int kEventsPerWait = 256;

int milliseconds_for(Backend::Timeout timeout) {
  if (!timeout.has_value()) return -1;
  if (timeout->count() <= 0) return 0;
  // Round up: waking a little late is harmless, waking early makes the caller spin.
  const long long ms = (timeout->count() + 999'999) / 1'000'000;
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

int result_of(long syscall_return) { return syscall_return >= 0 ? static_cast<int>(syscall_return) : -errno; }

}  // namespace

Result<std::unique_ptr<EpollBackend>> EpollBackend::create(const BackendOptions& options) {
  std::unique_ptr<EpollBackend> backend(new EpollBackend());
  backend->lent_buffer_count_ = options.lent_buffers;
  backend->lent_buffer_size_ = options.lent_buffer_size;
  backend->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (backend->epoll_fd_ < 0) return Error(errno, "epoll_create1");
  backend->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (backend->wake_fd_ < 0) return Error(errno, "eventfd");
  epoll_event event{};
  event.events = EPOLLIN;  // level-triggered: stays ready until poll() drains the counter
  event.data.fd = backend->wake_fd_;
  if (epoll_ctl(backend->epoll_fd_, EPOLL_CTL_ADD, backend->wake_fd_, &event) < 0) {
    return Error(errno, "epoll_ctl(ADD wake eventfd)");
  }
  const unsigned budget = options.max_completions_per_poll > 0 ? options.max_completions_per_poll : 1;
  backend->max_completions_per_poll_ = budget;
  backend->events_.resize(budget < kEventsPerWait ? budget : kEventsPerWait);
  return backend;
}

EpollBackend::~EpollBackend() {
  offload_.wait_idle();  // a lane still finishing calls wake()
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

EpollBackend::FdState& EpollBackend::state_for(int fd) {
  if (static_cast<std::size_t>(fd) >= fds_.size()) fds_.resize(static_cast<std::size_t>(fd) * 2 + 16);
  return fds_[static_cast<std::size_t>(fd)];
}

void EpollBackend::submit(Operation& operation) noexcept {
  ++in_flight_;
  operation.fd_forgotten = false;
  ++counters_.operations_submitted;
  OperationAccess::state(operation) = kStateIdle;
  if (is_file_operation(operation.opcode)) {
    // epoll cannot wait on a regular file (it is always "ready", and a read may still block on the
    // disk): the blocking pool runs it. Checked first: path operations take AT_FDCWD, a negative fd.
    OperationAccess::state(operation) = kStateOffloaded;
    offload_.submit(operation);
    return;
  }
  if (operation.fd < 0) {
    complete_later(operation, -EBADF);
    return;
  }
  if (operation.opcode == OpCode::kClose) {
    forget_fd(operation.fd);
    ++counters_.io_syscalls;
    // Linux releases the fd even when close(2) fails, so it is never retried.
    complete_later(operation, result_of(close(operation.fd)));
    return;
  }
  FdState& state = state_for(operation.fd);
  internal::OperationQueue& queue = waits_for_input(operation.opcode) ? state.waiting_for_input : state.waiting_for_output;
  // MSG_DONTWAIT: an operation that would wait completes with -EAGAIN instead, as io_uring does.
  const bool dont_wait = (operation.message_flags & MSG_DONTWAIT) != 0 &&
                         (operation.opcode == OpCode::kRecv || operation.opcode == OpCode::kSend ||
                          operation.opcode == OpCode::kRecvMsg || operation.opcode == OpCode::kSendMsg);
  if (!queue.empty()) {
    if (dont_wait) {
      complete_later(operation, -EAGAIN);
      return;
    }
    // Someone is already waiting in this direction: keep submission order.
    OperationAccess::state(operation) = kStateWaiting;
    queue.push_back(operation);
    return;
  }
  const int result = attempt(operation);
  if (result != -EAGAIN || dont_wait) {
    complete_later(operation, result);
    return;
  }
  OperationAccess::state(operation) = (OperationAccess::state(operation) & ~kStateMask) | kStateWaiting;
  queue.push_back(operation);
  if (!state.registered) register_fd(operation.fd, state);
}

void EpollBackend::register_fd(int fd, FdState& state) noexcept {
  epoll_event event{};
  // Edge-triggered for both directions, registered once: no epoll_ctl per operation.
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) == 0 || errno == EEXIST) {
    state.registered = true;
    return;
  }
  // The fd cannot be watched (EPERM: a regular file; EBADF): fail what waits on it, don't hang.
  fail_waiting(state, -errno);
}

void EpollBackend::fail_waiting(FdState& state, int result) noexcept {
  for (internal::OperationQueue* queue : {&state.waiting_for_input, &state.waiting_for_output}) {
    while (Operation* operation = queue->pop_front()) complete_later(*operation, result);
  }
}

int EpollBackend::attempt(Operation& operation) noexcept {
  ++counters_.io_syscalls;
  const std::size_t length = internal::clamp_io_length(operation.length);
  for (;;) {
    int result = 0;
    switch (operation.opcode) {
      case OpCode::kAccept:
        result = result_of(accept4(operation.fd, static_cast<sockaddr*>(operation.buffer),
                                   operation.buffer != nullptr ? &operation.address_length : nullptr,
                                   SOCK_NONBLOCK | SOCK_CLOEXEC));
        break;
      case OpCode::kConnect:
        if ((OperationAccess::state(operation) & kFlagConnectStarted) == 0) {
          result = result_of(connect(operation.fd, static_cast<const sockaddr*>(operation.buffer),
                                     operation.address_length));
          if (result == -EINPROGRESS) {
            OperationAccess::state(operation) |= kFlagConnectStarted;
            return -EAGAIN;
          }
        } else {
          int error = 0;
          socklen_t size = sizeof(error);
          if (getsockopt(operation.fd, SOL_SOCKET, SO_ERROR, &error, &size) < 0) return -errno;
          if (error != 0) return -error;
          sockaddr_storage peer;
          socklen_t peer_size = sizeof(peer);
          // Still in progress if the socket has no peer yet (a spurious wake-up).
          if (getpeername(operation.fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) < 0) {
            return errno == ENOTCONN ? -EAGAIN : -errno;
          }
          return 0;
        }
        break;
      case OpCode::kRecv:
        result = result_of(recv(operation.fd, operation.buffer, length, operation.message_flags));
        break;
      case OpCode::kSend:
        result = result_of(send(operation.fd, operation.buffer, length, operation.message_flags | MSG_NOSIGNAL));
        break;
      case OpCode::kRead:
        result = result_of(read(operation.fd, operation.buffer, length));
        break;
      case OpCode::kWrite:
        result = result_of(write(operation.fd, operation.buffer, length));
        break;
      case OpCode::kSendMsg:
        result = result_of(sendmsg(operation.fd, static_cast<const msghdr*>(operation.buffer),
                                   operation.message_flags | MSG_NOSIGNAL));
        break;
      case OpCode::kRecvMsg:
        result = result_of(recvmsg(operation.fd, static_cast<msghdr*>(operation.buffer), operation.message_flags));
        break;
      case OpCode::kClose:
        return -EINVAL;  // handled in submit(); never queued
      default:
        return -EINVAL;  // file operations go to the blocking pool in submit(); never queued
      case OpCode::kRecvBorrowed:
      case OpCode::kRecvMsgBorrowed: {
        if (!lent_) lent_ = std::make_unique<internal::LentBuffers>(lent_buffer_count_, lent_buffer_size_);
        const std::optional<std::uint32_t> id = lent_->take();
        if (!id) {
          // All lent out: wait for release_buffer(), which tries this fd's receives again. Listed once:
          // every EPOLLIN edge retries, and a peer sending small segments makes many edges.
          ++counters_.lent_buffers_exhausted;
          FdState& state = state_for(operation.fd);
          if (!state.starved) {
            state.starved = true;
            starved_fds_.push_back(operation.fd);
          }
          return -EAGAIN;
        }
        if (operation.opcode == OpCode::kRecvMsgBorrowed) {
          // A datagram, maybe empty, into the pool buffer placed in the caller's iovec (see OpCode).
          auto& header = *static_cast<msghdr*>(operation.buffer);
          header.msg_iov[0].iov_base = lent_->data(*id);
          header.msg_iov[0].iov_len = lent_->size();
          header.msg_iovlen = 1;
          result = result_of(recvmsg(operation.fd, &header, 0));
          if (result >= 0) {
            operation.buffer = lent_->data(*id);
            operation.buffer_id = *id;
          } else {
            lent_->give_back(*id);
          }
          break;
        }
        result = result_of(recv(operation.fd, lent_->data(*id), lent_->size(), 0));
        if (result > 0) {
          operation.buffer = lent_->data(*id);
          operation.buffer_id = *id;
        } else {
          lent_->give_back(*id);  // nothing received into it
          operation.buffer = nullptr;
        }
        break;
      }

    }
    if (result == -EINTR) continue;
    if (result == -EWOULDBLOCK) return -EAGAIN;
    return result;
  }
}

void EpollBackend::retry_queue(internal::OperationQueue& queue) noexcept {
  while (Operation* operation = queue.front()) {
    const int result = attempt(*operation);
    if (result == -EAGAIN) return;
    queue.pop_front();
    complete_later(*operation, result);
  }
}

void EpollBackend::complete_later(Operation& operation, int result) noexcept {
  operation.result = result;
  OperationAccess::state(operation) = kStateCompleted;
  completed_.push_back(operation);
}

void EpollBackend::cancel(Operation& operation) noexcept {
  if ((OperationAccess::state(operation) & kStateMask) == kStateOffloaded) {
    // Only one no lane has started can be taken back; a running one ends with its real result.
    if (offload_.cancel(operation)) complete_later(operation, -ECANCELED);
    return;
  }
  if ((OperationAccess::state(operation) & kStateMask) != kStateWaiting) return;  // finished or not ours: harmless
  FdState& state = state_for(operation.fd);
  internal::OperationQueue& queue = waits_for_input(operation.opcode) ? state.waiting_for_input : state.waiting_for_output;
  if (queue.remove(operation)) complete_later(operation, -ECANCELED);
}

void EpollBackend::cancel_all() noexcept {
  for (FdState& state : fds_) fail_waiting(state, -ECANCELED);
  internal::OperationQueue taken;
  offload_.cancel_all(taken);
  while (Operation* operation = taken.pop_front()) complete_later(*operation, -ECANCELED);
}

void EpollBackend::forget_fd(int fd) noexcept {
  if (fd < 0) return;
  {
    internal::OperationQueue taken;  // file operations on it that no lane has started
    offload_.cancel_fd(fd, taken);
    while (Operation* operation = taken.pop_front()) {
      complete_later(*operation, -ECANCELED);
      operation->fd_forgotten = true;
    }
  }
  if (static_cast<std::size_t>(fd) >= fds_.size()) return;
  FdState& state = fds_[static_cast<std::size_t>(fd)];
  // Operations in flight on a closing fd: those still waiting fail, and every one, also those whose
  // result is ready and not delivered yet, is marked so that none of them goes on with another step on
  // whatever file gets this number next (Operation::fd_forgotten).
  fail_waiting(state, -ECANCELED);
  for (Operation* operation = completed_.front(); operation != nullptr; operation = OperationAccess::queue_next(*operation)) {
    if (operation->fd == fd) operation->fd_forgotten = true;
  }
  if (state.registered) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  state.registered = false;
  if (state.starved) {
    // Not retried for a buffer any more; a new socket that gets this fd number is listed afresh.
    state.starved = false;
    std::erase(starved_fds_, fd);
  }
}

Result<void> EpollBackend::detach_fd(int fd) noexcept {
  if (fd >= 0 && static_cast<std::size_t>(fd) < fds_.size()) {
    const FdState& state = fds_[static_cast<std::size_t>(fd)];
    if (!state.waiting_for_input.empty() || !state.waiting_for_output.empty()) {
      return Error(EBUSY, "move_to: an operation is in flight on the socket");
    }
  }
  forget_fd(fd);  // borrowed reads keep nothing between reads here: nothing received can be lost
  return ok();
}

void EpollBackend::release_buffer(std::uint32_t buffer_id) noexcept {
  if (!lent_ || buffer_id >= lent_->count()) return;
  lent_->give_back(buffer_id);
  if (starved_fds_.empty()) return;
  std::vector<int> starved;
  starved.swap(starved_fds_);
  for (int fd : starved) {
    FdState& state = state_for(fd);
    state.starved = false;  // a retry that finds no buffer again lists the fd again
    retry_queue(state.waiting_for_input);
  }
}

void EpollBackend::collect_offloaded() noexcept {
  if (!offload_.has_finished()) return;
  internal::OperationQueue finished;
  offload_.take_finished(finished);
  while (Operation* operation = finished.pop_front()) complete_later(*operation, operation->result);
}

void EpollBackend::wake() noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] ssize_t written = write(wake_fd_, &one, sizeof(one));
}

int EpollBackend::poll(Timeout timeout) noexcept {
  // Nothing in flight and no wait wanted: spare the syscall (a pending wake-up is seen at the next wait).
  if (in_flight_ == 0 && timeout.has_value() && timeout->count() <= 0) return 0;
  collect_offloaded();
  if (!completed_.empty()) timeout = std::chrono::nanoseconds::zero();
  const auto deadline = std::chrono::steady_clock::now() + timeout.value_or(std::chrono::nanoseconds::zero());
  int ready;
  for (;;) {
    ++counters_.wait_syscalls;
    ready = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), milliseconds_for(timeout));
    // io_uring's task-work notifications (and any signal) interrupt the wait: resume it for the time left.
    if (ready >= 0 || errno != EINTR) break;
    if (timeout.has_value()) timeout = deadline - std::chrono::steady_clock::now();
  }
  for (int i = 0; i < ready; ++i) {
    const epoll_event& event = events_[static_cast<std::size_t>(i)];
    const int fd = event.data.fd;
    if (fd == wake_fd_) {
      std::uint64_t count;
      [[maybe_unused]] ssize_t drained = read(wake_fd_, &count, sizeof(count));
      continue;
    }
    if (static_cast<std::size_t>(fd) >= fds_.size()) continue;
    FdState& state = fds_[static_cast<std::size_t>(fd)];
    if (!state.registered) continue;  // stale event for an fd forgotten meanwhile
    // Errors and hang-ups wake both directions: the retried syscall reports what happened.
    if ((event.events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0) retry_queue(state.waiting_for_input);
    if ((event.events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0) retry_queue(state.waiting_for_output);
  }

  collect_offloaded();  // what finished on the pool meanwhile (its lane's wake() ended the wait)

  // Deliver, oldest first, up to the budget. Callbacks may submit; what they complete at once waits for
  // the next poll(), as does whatever is over the budget.
  int delivered = 0;
  internal::OperationQueue finished = completed_.take_all();
  while (delivered < static_cast<int>(max_completions_per_poll_)) {
    Operation* operation = finished.pop_front();
    if (operation == nullptr) break;
    OperationAccess::state(*operation) = kStateIdle;
    --in_flight_;
    ++counters_.operations_completed;
    ++delivered;
    operation->complete(*operation);
  }
  completed_.prepend(finished);
  return delivered;
}

}  // namespace surge
