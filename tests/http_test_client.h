// http_test_client.h: a deliberately plain HTTP/1.1 client for the tests of the example HTTP service
// (tests/http_server_test.cc, tests/http_allocation_test.cc): blocking loopback sockets driven with poll(),
// every wait bounded, and a response reader written independently of the service's own parser, so that
// the tests do not trust the code they test.
//
//   HttpClient client = HttpClient::connect(port);
//   ASSERT_TRUE(client.ok()) << client.error;
//   ASSERT_TRUE(client.send("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"));
//   HttpResponse response = client.read_response();
//   EXPECT_EQ(response.status, 200) << response.error;
//   EXPECT_EQ(client.wait_for_end(std::chrono::seconds(3)), HttpClient::End::kEof);
//
// Threads: one client is used by one thread at a time, except that send_raw() may run on another thread
// than the reads (a socket's two directions are independent).
#ifndef SURGE_TESTS_HTTP_TEST_CLIENT_H_
#define SURGE_TESTS_HTTP_TEST_CLIENT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace surge::testing {

using TestClock = std::chrono::steady_clock;

struct HttpResponse {
  int status = 0;  // 0: no complete response (error says why)
  std::string version;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string error;

  bool has(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) return true;
    }
    return false;
  }
  // The first header named `name` (lower case), or "".
  std::string header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) return value;
    }
    return {};
  }
};

class HttpClient {
 public:
  enum class End { kEof, kReset, kTimeout, kData, kError };

  HttpClient() = default;
  HttpClient(HttpClient&& other) noexcept
      : fd(std::exchange(other.fd, -1)), buffered(std::move(other.buffered)), error(std::move(other.error)) {}
  HttpClient& operator=(HttpClient&& other) noexcept {
    if (this != &other) {
      close();
      fd = std::exchange(other.fd, -1);
      buffered = std::move(other.buffered);
      error = std::move(other.error);
    }
    return *this;
  }
  ~HttpClient() { close(); }

  // A connection to 127.0.0.1:port (blocking connect). `receive_buffer` > 0 sets SO_RCVBUF first.
  static HttpClient connect(std::uint16_t port, int receive_buffer = 0) {
    HttpClient client;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      client.error = std::string("socket: ") + std::strerror(errno);
      return client;
    }
    if (receive_buffer > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
    const timeval limit{5, 0};  // blocking sends and the connect are bounded
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int result = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
    if (result < 0 && (errno == EINTR || errno == EINPROGRESS)) {
      // Interrupted (a connect with SO_SNDTIMEO is not restarted; io_uring's task work signals the thread
      // that made a ring) or timed out: the handshake goes on; wait for it, bounded.
      pollfd ready{fd, POLLOUT, 0};
      int polled;
      do polled = ::poll(&ready, 1, 5000);
      while (polled < 0 && errno == EINTR);
      int error = polled == 0 ? ETIMEDOUT : 0;
      socklen_t length = sizeof(error);
      if (polled > 0) getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
      errno = error;
      result = error == 0 ? 0 : -1;
    }
    if (result < 0) {
      client.connect_errno = errno;
      client.error = std::string("connect: ") + std::strerror(errno);
      ::close(fd);
      return client;
    }
    client.fd = fd;
    return client;
  }

  bool ok() const noexcept { return fd >= 0; }
  void close() noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  // Sends all of `data` (each send bounded by SO_SNDTIMEO): false, with `error` set, if it could not.
  bool send(std::string_view data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error = std::string("send: ") + std::strerror(errno);
        return false;
      }
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }
  // send() without touching `error` (for a second thread): 0, or the errno that stopped it.
  int send_raw(std::string_view data) const {
    std::size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return n == 0 ? EPIPE : errno;
      sent += static_cast<std::size_t>(n);
    }
    return 0;
  }

  // Receives into `buffered` whatever arrives within `limit`: bytes received (> 0), 0 at end of stream,
  // -ETIMEDOUT if nothing came, -errno on a failure.
  long read_more(std::chrono::milliseconds limit) {
    pollfd ready{fd, POLLIN, 0};
    const int polled = ::poll(&ready, 1, static_cast<int>(limit.count()));
    if (polled < 0) return errno == EINTR ? -ETIMEDOUT : -errno;  // the callers loop until their deadline
    if (polled == 0) return -ETIMEDOUT;
    char chunk[65536];
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -ETIMEDOUT : -errno;
    buffered.append(chunk, static_cast<std::size_t>(n));
    return n;
  }

  // Reads one response; `head_request`: it answers a HEAD (no body whatever Content-Length says).
  HttpResponse read_response(bool head_request = false, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    HttpResponse response;
    const auto deadline = TestClock::now() + limit;
    std::size_t head_end;
    while ((head_end = buffered.find("\r\n\r\n")) == std::string::npos) {
      if (!wait_more(deadline, response, "the response head")) return response;
    }
    const std::string head = buffered.substr(0, head_end + 2);
    buffered.erase(0, head_end + 4);
    // Status line: HTTP/1.x SP 3DIGIT SP reason CRLF
    const std::size_t line_end = head.find("\r\n");
    const std::string line = head.substr(0, line_end);
    if (line.size() < 12 || line.compare(0, 7, "HTTP/1.") != 0 || line[8] != ' ' || line[12] != ' ' ||
        !std::isdigit(static_cast<unsigned char>(line[9])) || !std::isdigit(static_cast<unsigned char>(line[10])) ||
        !std::isdigit(static_cast<unsigned char>(line[11]))) {
      response.error = "bad status line: \"" + line + "\"";
      return response;
    }
    response.version = line.substr(0, 8);
    const int status = std::stoi(line.substr(9, 3));
    response.reason = line.substr(13);
    for (std::size_t at = line_end + 2; at < head.size();) {
      const std::size_t end = head.find("\r\n", at);
      const std::string field = head.substr(at, end - at);
      at = end + 2;
      const std::size_t colon = field.find(':');
      if (colon == std::string::npos || colon == 0) {
        response.error = "bad header line: \"" + field + "\"";
        return response;
      }
      std::string name = field.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::size_t value_start = colon + 1;
      while (value_start < field.size() && field[value_start] == ' ') ++value_start;
      response.headers.emplace_back(std::move(name), field.substr(value_start));
    }
    std::size_t length = 0;
    const bool bodiless = head_request || status / 100 == 1 || status == 204 || status == 304;
    if (!bodiless) {
      if (!response.has("content-length")) {
        response.error = "no Content-Length in: " + head;
        return response;
      }
      length = std::stoull(response.header("content-length"));
    }
    while (buffered.size() < length) {
      if (!wait_more(deadline, response, "the response body")) return response;
    }
    response.body = buffered.substr(0, length);
    buffered.erase(0, length);
    response.status = status;
    return response;
  }

  // Waits up to `limit` for the connection to end. Data that arrives first ends the wait with kData
  // (it is kept in `buffered`) unless `discard_data`.
  End wait_for_end(std::chrono::milliseconds limit, bool discard_data = false) {
    const auto deadline = TestClock::now() + limit;
    if (!buffered.empty() && !discard_data) return End::kData;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - TestClock::now());
      if (left.count() <= 0) return End::kTimeout;
      const long n = read_more(left);
      if (n == 0) return End::kEof;
      if (n == -ECONNRESET || n == -EPIPE) return End::kReset;
      if (n == -ETIMEDOUT) continue;
      if (n < 0) return End::kError;
      if (!discard_data) return End::kData;
      buffered.clear();
    }
  }

  // Keeps everything that arrives (in `buffered`) until the connection ends or `limit` passes: kEof,
  // kReset, kTimeout or kError, never kData.
  End read_to_end(std::chrono::milliseconds limit) {
    const auto deadline = TestClock::now() + limit;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - TestClock::now());
      if (left.count() <= 0) return End::kTimeout;
      const long n = read_more(left);
      if (n == 0) return End::kEof;
      if (n == -ECONNRESET || n == -EPIPE) return End::kReset;
      if (n == -ETIMEDOUT || n > 0) continue;
      return End::kError;
    }
  }

  int fd = -1;
  int connect_errno = 0;
  std::string buffered;  // received, not yet read as a response
  std::string error;

 private:
  bool wait_more(TestClock::time_point deadline, HttpResponse& response, const char* what) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - TestClock::now());
    if (left.count() <= 0) {
      response.error = std::string("timed out waiting for ") + what + " (have: \"" + buffered.substr(0, 200) + "\")";
      return false;
    }
    const long n = read_more(left);
    if (n > 0 || n == -ETIMEDOUT) return true;
    response.error = n == 0
                         ? std::string("end of stream before ") + what + " (have: \"" + buffered.substr(0, 200) + "\")"
                         : std::string("recv: ") + std::strerror(static_cast<int>(-n)) + " before " + what;
    return false;
  }
};

inline const char* end_name(HttpClient::End end) {
  switch (end) {
    case HttpClient::End::kEof:
      return "end of stream";
    case HttpClient::End::kReset:
      return "reset";
    case HttpClient::End::kTimeout:
      return "still open (timed out)";
    case HttpClient::End::kData:
      return "more data";
    case HttpClient::End::kError:
      return "error";
  }
  return "?";
}

}  // namespace surge::testing

#endif  // SURGE_TESTS_HTTP_TEST_CLIENT_H_
