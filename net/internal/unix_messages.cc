#include "net/internal/unix_messages.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace surge::internal {
namespace {

constexpr std::uint8_t kFirstPauseMs = 1;
constexpr std::uint8_t kLongestPauseMs = 16;

}  // namespace

SendMessageAwaitable::SendMessageAwaitable(Worker& worker, int fd, ConstBuffer data, std::span<const int> fds,
                                           const UnixAddress* to, bool datagram) noexcept
    : IoAwaitable(worker, OpCode::kSendMsg, fd), datagram_(datagram) {
  owned_fd = true;
  buffer = &message_;
  complete = &on_sent;
  vector_.iov_base = const_cast<void*>(data.data);  // sendmsg only reads it
  vector_.iov_len = data.size;
  message_.msg_iov = &vector_;
  message_.msg_iovlen = 1;
  if (to != nullptr) {
    to_ = *to;
    message_.msg_name = const_cast<sockaddr*>(to_.data());
    message_.msg_namelen = to_.size();
  }
  if (fds.size() > kMaxFdsPerMessage) {
    refusal_ = "sendmsg: more descriptors than kMaxFdsPerMessage (16) in one message";
    refuse(-EINVAL);
    return;
  }
  if (!fds.empty()) {
    if (!datagram && data.size == 0) {
      refusal_ = "sendmsg: descriptors on a stream need at least one byte of data to travel with";
      refuse(-EINVAL);
      return;
    }
    std::memset(control_, 0, sizeof(control_));
    message_.msg_control = control_;
    message_.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* header = CMSG_FIRSTHDR(&message_);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
  }
  if (datagram) {
    // See the top of the header: never let a backend wait on a datagram send.
    message_flags = MSG_DONTWAIT;
    set_multi_step();  // a pause between attempts has no SQE to carry a linked timeout
  }
}

SendMessageAwaitable::~SendMessageAwaitable() {
  if (pause_.valid()) WorkerAccess::timers(worker()).cancel(pause_);
}

void SendMessageAwaitable::on_sent(Operation& operation) noexcept {
  auto& self = static_cast<SendMessageAwaitable&>(operation);
  note_linked_timeout(self);
  if (self.result == -EAGAIN && self.datagram_) {
    self.pause_ms_ = self.pause_ms_ == 0 ? kFirstPauseMs : std::min<std::uint8_t>(self.pause_ms_ * 2, kLongestPauseMs);
    Worker& worker = self.worker();
    self.pause_ = WorkerAccess::timers(worker).insert(WorkerAccess::current_tick(worker) + self.pause_ms_,
                                                      &on_pause_over, &self);
    return;
  }
  if (is_transient(self.result)) {
    self.resubmit();
    return;
  }
  self.resume_awaiter();
}

void SendMessageAwaitable::on_pause_over(void* context) noexcept {
  auto& self = *static_cast<SendMessageAwaitable*>(context);
  self.pause_ = TimerId{};
  self.resubmit();  // or ends with ECANCELED/ETIMEDOUT if cancellation or the deadline came meanwhile
}

Result<std::size_t> SendMessageAwaitable::await_resume() const noexcept {
  if (refused()) return Error(EINVAL, refusal_);
  return to_size_result("sendmsg");
}

ReceiveMessageAwaitable::ReceiveMessageAwaitable(Worker& worker, int fd, MutableBuffer data, bool want_fds,
                                                 bool datagram, bool mixed) noexcept
    : IoAwaitable(worker, OpCode::kRecvMsg, fd) {
  owned_fd = true;
  buffer = &message_;
  vector_.iov_base = data.data;
  vector_.iov_len = data.size;
  message_.msg_iov = &vector_;
  message_.msg_iovlen = 1;
  if (datagram) {
    message_.msg_name = &from_;
    message_.msg_namelen = sizeof(from_);
    message_flags |= MSG_TRUNC;  // the result is the datagram's full length, however much fitted
  }
  if (want_fds) {
    message_.msg_control = control_;
    message_.msg_controllen = sizeof(control_);
    message_flags |= MSG_CMSG_CLOEXEC;
  }
  if (mixed) refuse(-EINVAL);
}

ReceiveMessageAwaitable::~ReceiveMessageAwaitable() {
  if (completed() && !fds_taken_ && result >= 0) {
    ReceivedFds unclaimed;
    take_fds(unclaimed);  // and close them here
  }
}

void ReceiveMessageAwaitable::take_fds(ReceivedFds& out) noexcept {
  if (fds_taken_ || message_.msg_control == nullptr) return;
  fds_taken_ = true;
  for (cmsghdr* header = CMSG_FIRSTHDR(&message_); header != nullptr; header = CMSG_NXTHDR(&message_, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* data = CMSG_DATA(header);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, data + i * sizeof(int), sizeof(int));  // CMSG_DATA need not be int-aligned
      out.add(fd);
    }
  }
  if ((message_.msg_flags & MSG_CTRUNC) != 0) out.drop_all();
}

UnixAddress ReceiveMessageAwaitable::sender() const noexcept {
  if (message_.msg_name == nullptr) return UnixAddress::unnamed();
  auto address = UnixAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&from_), message_.msg_namelen);
  return address ? *address : UnixAddress::unnamed();
}

}  // namespace surge::internal
