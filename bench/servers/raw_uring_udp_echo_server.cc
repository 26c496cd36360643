// raw_uring_udp_echo_server: the practical limit for UDP echo. A hand-written liburing loop with no
// abstraction: one multishot recvmsg with buffer selection from a provided-buffer ring (256 buffers of
// 16 KiB, as the runtime lends), each datagram sent back from the buffer it landed in with one sendmsg,
// the buffer returned to the ring when that send completes; completions reaped in batches, one
// io_uring_submit_and_wait per loop turn. The ring is set up like the runtime's (SINGLE_ISSUER|
// DEFER_TASKRUN, else COOP_TASKRUN, else no flags). Protocol in server_common.h; stats add syscalls=
// (io_uring_enter). Needs Linux 6.0 (multishot recvmsg).
//
//   raw_uring_udp_echo_server [--port=0] [--cpu=0] [--buffer=65536 (ignored: datagrams use the ring)]
#include <liburing.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/servers/server_common.h"
#include "bench/servers/server_flags.h"

namespace surge::bench {
namespace {

constexpr const char* kProgram = "raw_uring_udp_echo_server";
constexpr const char* kUsage =
    "the practical limit for UDP echo, a hand-written liburing loop (multishot recvmsg into a "
    "provided-buffer ring, sendmsg back from the same buffer), for //bench:echo_compare's udp workload. "
    "Binds UDP 127.0.0.1, prints 'port N', answers 'stats' on stdin with its CPU time, memory and "
    "io_uring_enter calls, and exits when stdin closes.\n"
    "Usage: raw_uring_udp_echo_server [--port=0] [--cpu=-1] [--buffer=65536]";

constexpr unsigned kBuffers = 256;
constexpr unsigned kBufferSize = 16 * 1024;
constexpr unsigned short kGroup = 0;
constexpr std::uint64_t kRecvTag = ~std::uint64_t{0};

// One datagram on its way back: its own msghdr (the send reads it), one per buffer.
struct Reply {
  msghdr header;
  iovec data;
  sockaddr_in6 peer;
};

class Server {
 public:
  explicit Server(int fd) : fd_(fd) {}

  void set_up() {
    const unsigned ladder[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_COOP_TASKRUN,
                               0};
    int result = -EINVAL;
    for (unsigned flags : ladder) {
      io_uring_params params{};
      params.flags = flags | IORING_SETUP_CQSIZE;
      params.cq_entries = 4096;
      result = io_uring_queue_init_params(256, &ring_, &params);
      if (result != -EINVAL) break;
    }
    if (result < 0) die(kProgram, "io_uring_queue_init_params", -result);
    // The provided-buffer ring, registered by hand (liburing 2.3 has no io_uring_setup_buf_ring).
    const std::size_t ring_bytes = kBuffers * sizeof(io_uring_buf);
    void* memory = mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (memory == MAP_FAILED) die(kProgram, "mmap", errno);
    buf_ring_ = static_cast<io_uring_buf_ring*>(memory);
    io_uring_buf_ring_init(buf_ring_);
    io_uring_buf_reg registration{};
    registration.ring_addr = reinterpret_cast<std::uintptr_t>(buf_ring_);
    registration.ring_entries = kBuffers;
    registration.bgid = kGroup;
    if (const int registered = io_uring_register_buf_ring(&ring_, &registration, 0); registered != 0) {
      die(kProgram, "io_uring_register_buf_ring", -registered);
    }
    memory_ = std::unique_ptr<char[]>(new char[std::size_t{kBuffers} * kBufferSize]);
    replies_ = std::unique_ptr<Reply[]>(new Reply[kBuffers]);
    for (unsigned id = 0; id < kBuffers; ++id) give_back(id);
    request_.msg_namelen = sizeof(sockaddr_in6);
  }

  [[noreturn]] void run() {
    arm_recv();
    for (;;) {
      syscalls_.store(syscalls_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      const int result = io_uring_submit_and_wait(&ring_, 1);
      if (result < 0 && result != -EINTR && result != -EAGAIN && result != -EBUSY) {
        die(kProgram, "io_uring_submit_and_wait", -result);
      }
      io_uring_cqe* cqe;
      unsigned head;
      unsigned seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        on_completion(cqe->user_data, cqe->res, cqe->flags);
      }
      io_uring_cq_advance(&ring_, seen);
      if (!armed_ && free_ > 0) arm_recv();  // ran dry (ENOBUFS) or ended: go on once buffers are back
    }
  }

  std::uint64_t syscalls() const { return syscalls_.load(std::memory_order_relaxed); }

 private:
  io_uring_sqe* sqe() {
    io_uring_sqe* entry = io_uring_get_sqe(&ring_);
    while (entry == nullptr) {  // SQ full: hand the batch to the kernel and take a fresh entry
      syscalls_.store(syscalls_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      io_uring_submit(&ring_);
      entry = io_uring_get_sqe(&ring_);
    }
    return entry;
  }

  char* buffer(unsigned id) { return memory_.get() + std::size_t{id} * kBufferSize; }

  void give_back(unsigned id) {
    io_uring_buf_ring_add(buf_ring_, buffer(id), kBufferSize, static_cast<unsigned short>(id),
                          io_uring_buf_ring_mask(kBuffers), 0);
    io_uring_buf_ring_advance(buf_ring_, 1);
    ++free_;
  }

  void arm_recv() {
    io_uring_sqe* entry = sqe();
    io_uring_prep_recvmsg_multishot(entry, fd_, &request_, 0);
    entry->flags |= IOSQE_BUFFER_SELECT;
    entry->buf_group = kGroup;
    entry->user_data = kRecvTag;
    armed_ = true;
  }

  void on_completion(std::uint64_t user_data, int result, unsigned flags) {
    if (user_data != kRecvTag) {  // a send finished: its buffer goes back to the ring
      give_back(static_cast<unsigned>(reinterpret_cast<Reply*>(user_data) - replies_.get()));
      return;
    }
    if ((flags & IORING_CQE_F_MORE) == 0) armed_ = false;
    if ((flags & IORING_CQE_F_BUFFER) == 0) return;  // ENOBUFS and the like: re-armed in run()
    const unsigned id = flags >> IORING_CQE_BUFFER_SHIFT;
    --free_;
    io_uring_recvmsg_out* out = io_uring_recvmsg_validate(buffer(id), result, &request_);
    if (result < 0 || out == nullptr || (out->flags & MSG_TRUNC) != 0) {
      give_back(id);
      return;
    }
    Reply& reply = replies_[id];
    std::memcpy(&reply.peer, io_uring_recvmsg_name(out), std::min<unsigned>(out->namelen, sizeof(reply.peer)));
    reply.data.iov_base = io_uring_recvmsg_payload(out, &request_);
    reply.data.iov_len = io_uring_recvmsg_payload_length(out, result, &request_);
    reply.header = msghdr{};
    reply.header.msg_name = &reply.peer;
    reply.header.msg_namelen = out->namelen;
    reply.header.msg_iov = &reply.data;
    reply.header.msg_iovlen = 1;
    io_uring_sqe* entry = sqe();
    io_uring_prep_sendmsg(entry, fd_, &reply.header, 0);
    entry->user_data = reinterpret_cast<std::uintptr_t>(&reply);
  }

  io_uring ring_{};
  int fd_;
  io_uring_buf_ring* buf_ring_ = nullptr;
  std::unique_ptr<char[]> memory_;
  std::unique_ptr<Reply[]> replies_;
  msghdr request_{};  // the multishot request's: reserves room for the source in every buffer
  unsigned free_ = 0;  // buffers in the ring
  bool armed_ = false;
  std::atomic<std::uint64_t> syscalls_{0};  // written by the loop, read by the control thread
};

int bind_loopback(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die(kProgram, "socket", errno);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) die(kProgram, "bind", errno);
  return fd;
}

std::uint16_t local_port(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

int main_impl(int argc, char** argv) {
  const ServerFlags flags = parse_server_flags(argc, argv, kUsage);
  pin_current_thread(flags.cpu);
  const int fd = bind_loopback(flags.port);
  auto server = std::make_unique<Server>(fd);
  server->set_up();  // on the serving thread: SINGLE_ISSUER ties the ring to it
  Server* shared = server.get();
  start_control_thread([shared] { return absl::StrCat("syscalls=", shared->syscalls()); });
  announce_port(local_port(fd));
  server->run();
}

}  // namespace
}  // namespace surge::bench

int main(int argc, char** argv) { return surge::bench::main_impl(argc, argv); }
