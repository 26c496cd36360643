#include "bench/udp_load.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace surge::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::nanoseconds thread_cpu() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  const auto micros = [](const timeval& t) { return std::int64_t{t.tv_sec} * 1'000'000 + t.tv_usec; };
  return std::chrono::microseconds(micros(usage.ru_utime) + micros(usage.ru_stime));
}

// The slot and sequence number at the head of every datagram.
struct Header {
  std::uint32_t slot;
  std::uint32_t sequence;
};

}  // namespace

Result<UdpWindowResult> run_udp_echo_window(const UdpWindowOptions& options) {
  const int in_flight = std::clamp(options.in_flight, 1, 1024);
  const std::size_t size = std::clamp<std::size_t>(options.datagram_size, sizeof(Header), 65507);
  const int fd = ::socket(options.address.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(errno, "socket");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, options.address.data(), options.address.size()) < 0) return Error(errno, "connect");
  const int buffer_bytes = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof(buffer_bytes));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof(buffer_bytes));
  const timeval poll_interval{0, 20'000};  // recvmmsg wakes up at least every 20 ms to check for losses
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &poll_interval, sizeof(poll_interval));

  // The pattern every datagram carries after its header; sends and receives have a buffer per slot.
  std::vector<unsigned char> pattern(size);
  for (std::size_t i = 0; i < size; ++i) pattern[i] = static_cast<unsigned char>(i * 131 + 7);
  const auto n = static_cast<std::size_t>(in_flight);
  std::vector<unsigned char> send_memory(n * size);
  std::vector<unsigned char> receive_memory(n * (size + 1));  // +1: a longer echo shows as one
  std::vector<iovec> send_iov(n), receive_iov(n);
  std::vector<mmsghdr> sends(n), receives(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::memcpy(&send_memory[i * size], pattern.data(), size);
    send_iov[i] = {&send_memory[i * size], size};
    receive_iov[i] = {&receive_memory[i * (size + 1)], size + 1};
    receives[i].msg_hdr.msg_iov = &receive_iov[i];
    receives[i].msg_hdr.msg_iovlen = 1;
  }
  std::vector<std::uint32_t> sequence(n, 0);
  std::vector<Clock::time_point> sent_at(n);

  UdpWindowResult result;
  std::size_t pending = 0;  // slots queued in `sends` for the next sendmmsg
  auto queue_send = [&](std::size_t slot) {
    const Header header{static_cast<std::uint32_t>(slot), ++sequence[slot]};
    std::memcpy(&send_memory[slot * size], &header, sizeof(header));
    sends[pending].msg_hdr = msghdr{};
    sends[pending].msg_hdr.msg_iov = &send_iov[slot];
    sends[pending].msg_hdr.msg_iovlen = 1;
    ++pending;
  };
  auto flush = [&]() -> Result<void> {
    std::size_t done = 0;
    const auto now = Clock::now();
    while (done < pending) {
      const int sent = ::sendmmsg(fd, sends.data() + done, static_cast<unsigned>(pending - done), 0);
      if (sent < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS || errno == ECONNREFUSED) continue;
        return Error(errno, "sendmmsg");
      }
      done += static_cast<std::size_t>(sent);
    }
    for (std::size_t i = 0; i < pending; ++i) {
      const auto* header = static_cast<const Header*>(sends[i].msg_hdr.msg_iov->iov_base);
      sent_at[header->slot] = now;
    }
    pending = 0;
    return ok();
  };

  for (std::size_t slot = 0; slot < n; ++slot) queue_send(slot);
  if (auto sent = flush(); !sent) return sent.error();

  const auto start = Clock::now();
  const auto window_start = start + options.warmup;
  const auto window_end = window_start + options.window;
  bool in_window = false;
  Clock::time_point opened;
  std::chrono::nanoseconds cpu_at_open{0};
  Clock::time_point last_echo = start;
  for (;;) {
    const auto now = Clock::now();
    if (!in_window && now >= window_start) {
      if (options.at_window_start) options.at_window_start();
      in_window = true;
      opened = Clock::now();
      cpu_at_open = thread_cpu();
    }
    if (in_window && now >= window_end) break;
    if (now - last_echo > std::chrono::seconds(1)) return Error(ETIMEDOUT, "udp echo: no reply for a second");
    for (std::size_t i = 0; i < n; ++i) receives[i].msg_hdr.msg_flags = 0;
    const int got = ::recvmmsg(fd, receives.data(), static_cast<unsigned>(n), MSG_WAITFORONE, nullptr);
    if (got < 0 && errno != EAGAIN && errno != EINTR && errno != ECONNREFUSED) return Error(errno, "recvmmsg");
    const auto received_at = Clock::now();
    for (int i = 0; i < std::max(got, 0); ++i) {
      const unsigned char* bytes = static_cast<const unsigned char*>(receive_iov[static_cast<std::size_t>(i)].iov_base);
      Header header{};
      std::memcpy(&header, bytes, sizeof(header));
      if (receives[static_cast<std::size_t>(i)].msg_len != size || header.slot >= n ||
          std::memcmp(bytes + sizeof(header), pattern.data() + sizeof(header), size - sizeof(header)) != 0) {
        ++result.corrupt;
        continue;
      }
      if (header.sequence != sequence[header.slot]) continue;  // a late echo of one counted as lost
      last_echo = received_at;
      if (in_window && received_at < window_end) {
        ++result.datagrams;
        result.latencies->record(received_at - sent_at[header.slot]);
      }
      queue_send(header.slot);
    }
    // Slots whose echo is overdue send again.
    for (std::size_t slot = 0; slot < n; ++slot) {
      if (received_at - sent_at[slot] > std::chrono::milliseconds(100)) {
        bool queued = false;
        for (std::size_t j = 0; j < pending && !queued; ++j) {
          queued = static_cast<const Header*>(sends[j].msg_hdr.msg_iov->iov_base)->slot == slot;
        }
        if (!queued) {
          ++result.lost;
          queue_send(slot);
        }
      }
    }
    if (auto sent = flush(); !sent) return sent.error();
  }
  result.client_cpu = thread_cpu() - cpu_at_open;
  result.elapsed = window_end - opened;  // echoes are counted up to window_end, not past it
  if (options.at_window_end) options.at_window_end();
  return result;
}

}  // namespace surge::bench
