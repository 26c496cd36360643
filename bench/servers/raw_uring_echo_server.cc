// raw_uring_echo_server: the practical limit. A hand-written liburing echo loop with no abstraction at
// all: one single-shot accept, then recv -> send (the rest, if short) -> recv per connection, completions
// reaped in batches, one io_uring_submit_and_wait per loop turn. The ring is set up like the runtime's
// (SINGLE_ISSUER|DEFER_TASKRUN, else COOP_TASKRUN, else no flags) so that the comparison is of the code
// around the ring, not of ring flags. Protocol in server_common.h; stats add syscalls= (io_uring_enter).
//
//   raw_uring_echo_server [--port=0] [--cpu=0] [--buffer=65536]
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/servers/server_common.h"
#include "bench/servers/server_flags.h"

namespace surge::bench {
namespace {

constexpr const char* kProgram = "raw_uring_echo_server";
constexpr const char* kUsage =
    "the practical limit, a hand-written liburing echo loop with no abstraction, "
    "for //bench:echo_compare. Listens on 127.0.0.1, prints 'port N', answers 'stats' on stdin with its "
    "CPU time, memory and io_uring_enter calls, and exits when stdin closes.\n"
    "Usage: raw_uring_echo_server [--port=0] [--cpu=-1] [--buffer=65536]";

enum class Step : std::uintptr_t { kAccept = 0, kRecv = 1, kSend = 2 };

struct Connection {
  int fd;
  std::unique_ptr<char[]> buffer;
  unsigned received = 0;  // bytes of the current message
  unsigned sent = 0;      // of those, bytes sent back so far
};

// user_data = connection address | step (Connection is 8-byte aligned, so the low bits are free).
std::uint64_t tag(Connection* connection, Step step) {
  return reinterpret_cast<std::uintptr_t>(connection) | static_cast<std::uintptr_t>(step);
}

class Server {
 public:
  Server(int listen_fd, std::size_t buffer_size) : listen_fd_(listen_fd), buffer_size_(buffer_size) {}

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
  }

  [[noreturn]] void run() {
    arm_accept();
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
        on_completion(cqe->user_data, cqe->res);
      }
      io_uring_cq_advance(&ring_, seen);
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

  void arm_accept() {
    io_uring_sqe* entry = sqe();
    io_uring_prep_accept(entry, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    entry->user_data = tag(nullptr, Step::kAccept);
  }

  void arm_recv(Connection* connection) {
    io_uring_sqe* entry = sqe();
    io_uring_prep_recv(entry, connection->fd, connection->buffer.get(), buffer_size_, 0);
    entry->user_data = tag(connection, Step::kRecv);
  }

  void arm_send(Connection* connection) {
    io_uring_sqe* entry = sqe();
    io_uring_prep_send(entry, connection->fd, connection->buffer.get() + connection->sent,
                       connection->received - connection->sent, MSG_NOSIGNAL);
    entry->user_data = tag(connection, Step::kSend);
  }

  void close_connection(Connection* connection) {
    close(connection->fd);
    delete connection;
  }

  void on_completion(std::uint64_t user_data, int result) {
    const auto step = static_cast<Step>(user_data & 7);
    auto* connection = reinterpret_cast<Connection*>(user_data & ~std::uint64_t{7});
    switch (step) {
      case Step::kAccept:
        arm_accept();
        if (result >= 0) {
          const int one = 1;
          setsockopt(result, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          arm_recv(new Connection{result, std::unique_ptr<char[]>(new char[buffer_size_])});
        }
        return;
      case Step::kRecv:
        if (result <= 0) return close_connection(connection);  // EOF or error (reset)
        connection->received = static_cast<unsigned>(result);
        connection->sent = 0;
        return arm_send(connection);
      case Step::kSend:
        if (result < 0) return close_connection(connection);
        connection->sent += static_cast<unsigned>(result);
        if (connection->sent < connection->received) return arm_send(connection);  // short send
        return arm_recv(connection);
    }
  }

  io_uring ring_{};
  int listen_fd_;
  std::size_t buffer_size_;
  std::atomic<std::uint64_t> syscalls_{0};  // written by the loop, read by the control thread
};

int listen_on_loopback(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die(kProgram, "socket", errno);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) die(kProgram, "bind", errno);
  if (listen(fd, SOMAXCONN) != 0) die(kProgram, "listen", errno);
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
  const int listen_fd = listen_on_loopback(flags.port);
  auto server = std::make_unique<Server>(listen_fd, flags.buffer_size);
  server->set_up();  // on the serving thread: SINGLE_ISSUER ties the ring to it
  Server* shared = server.get();
  start_control_thread([shared] { return absl::StrCat("syscalls=", shared->syscalls()); });
  announce_port(local_port(listen_fd));
  server->run();
}

}  // namespace
}  // namespace surge::bench

int main(int argc, char** argv) { return surge::bench::main_impl(argc, argv); }
