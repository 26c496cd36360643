// owned_fd.h: OwnedFd, a file descriptor that closes itself, and ReceivedFds, the descriptors that
// arrived with one message (SCM_RIGHTS, see unix_stream.h and unix_datagram.h).
//
//   auto message = co_await stream.recv_with_fds(buffer);
//   if (!message) co_return message.error();
//   for (surge::OwnedFd& fd : message->fds) use(fd.get());      // closed when `message` goes away
//   surge::OwnedFd kept = message->fds.take(0);                  // or keep one beyond it
//
// An OwnedFd is not tied to a worker: it is closed with close(2) wherever it is destroyed, on any
// thread. Wrap a received socket in a runtime type (UnixStream(worker, fd.release()), ...) to do I/O on
// it through a worker; note that a received descriptor shares its file status flags (O_NONBLOCK) with
// the sender's, and that the runtime's socket types expect O_NONBLOCK.
#ifndef SURGE_NET_OWNED_FD_H_
#define SURGE_NET_OWNED_FD_H_

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <utility>

#include "runtime/result.h"

namespace surge {

class OwnedFd {
 public:
  OwnedFd() noexcept = default;
  explicit OwnedFd(int fd) noexcept : fd_(fd) {}
  OwnedFd(OwnedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept {
    if (this != &other) {
      (void)close();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() { (void)close(); }

  int get() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return is_open(); }

  // Gives up ownership: the caller closes the returned fd.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  // Closes now (a second call is a no-op). Linux releases the fd even when close(2) fails.
  Result<void> close() noexcept {
    if (fd_ < 0) return ok();
    if (::close(std::exchange(fd_, -1)) < 0) return Error(errno, "close");
    return ok();
  }

 private:
  int fd_ = -1;
};

// The most descriptors one message carries, either way: what the control buffer inside each
// send/receive awaitable has room for (no allocation per message). A message that arrives with more
// is truncated by the kernel (MSG_CTRUNC), and then none of its descriptors is kept (see ReceivedFds).
inline constexpr std::size_t kMaxFdsPerMessage = 16;

// The descriptors received with one message, owned: each is closed when this is destroyed, unless
// taken. They carry FD_CLOEXEC (received with MSG_CMSG_CLOEXEC).
class ReceivedFds {
 public:
  ReceivedFds() noexcept = default;
  ReceivedFds(ReceivedFds&& other) noexcept
      : fds_(std::move(other.fds_)), count_(std::exchange(other.count_, 0)),
        truncated_(std::exchange(other.truncated_, false)) {}
  ReceivedFds& operator=(ReceivedFds&& other) noexcept {
    if (this != &other) {
      fds_ = std::move(other.fds_);  // closes what this held
      count_ = std::exchange(other.count_, 0);
      truncated_ = std::exchange(other.truncated_, false);
    }
    return *this;
  }

  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  OwnedFd& operator[](std::size_t i) noexcept { return fds_[i]; }
  const OwnedFd& operator[](std::size_t i) const noexcept { return fds_[i]; }
  OwnedFd* begin() noexcept { return fds_.data(); }
  OwnedFd* end() noexcept { return fds_.data() + count_; }
  const OwnedFd* begin() const noexcept { return fds_.data(); }
  const OwnedFd* end() const noexcept { return fds_.data() + count_; }
  // Moves descriptor `i` out (leaving a closed OwnedFd in its place).
  OwnedFd take(std::size_t i) noexcept { return std::move(fds_[i]); }

  // The sender passed more descriptors than kMaxFdsPerMessage (the kernel said MSG_CTRUNC). A partial
  // set would be ambiguous (which ones are missing?), so every descriptor of the message was closed and
  // this is empty: the bytes arrived, the descriptors did not.
  bool truncated() const noexcept { return truncated_; }

  // For the receive awaitables: adds `fd`, or closes it if full (then marks the set truncated).
  void add(int fd) noexcept {
    if (count_ < fds_.size()) {
      fds_[count_++] = OwnedFd(fd);
    } else {
      ::close(fd);
      truncated_ = true;
    }
  }
  // Closes everything received and marks the set truncated.
  void drop_all() noexcept {
    for (std::size_t i = 0; i < count_; ++i) (void)fds_[i].close();
    count_ = 0;
    truncated_ = true;
  }

 private:
  std::array<OwnedFd, kMaxFdsPerMessage> fds_;
  std::size_t count_ = 0;
  bool truncated_ = false;
};

}  // namespace surge

#endif  // SURGE_NET_OWNED_FD_H_
