// bench/http_load.h: the response-head scanner on good and bad input, and run_http_load against scripted
// servers over real loopback sockets on every backend (responses split into small pieces, pipelining,
// non-200 statuses, servers that close or send garbage, fd leaks).
#include "bench/http_load.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "net/socket_address.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/testing/backend_param.h"
#include "runtime/testing/fd_count.h"
#include "runtime/time.h"

namespace surge::bench {
namespace {

using namespace std::chrono_literals;

ScanStatus scan(std::string_view text, ResponseHead* head) {
  const char* error = nullptr;
  const ScanStatus status = scan_response_head(text, head, &error);
  if (status == ScanStatus::kMalformed) {
    EXPECT_NE(error, nullptr);
  }
  return status;
}

TEST(ScanResponseHead, ReadsStatusLengthAndHeadSize) {
  constexpr std::string_view kResponse =
      "HTTP/1.1 200 OK\r\nServer: x\r\ncontent-LENGTH: 13\r\nDate: now\r\n\r\nHello, World!";
  ResponseHead head;
  ASSERT_EQ(scan(kResponse, &head), ScanStatus::kComplete);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.content_length, 13u);
  EXPECT_EQ(head.head_size, kResponse.size() - 13);
  EXPECT_FALSE(head.connection_close);
}

TEST(ScanResponseHead, NeedsMoreUntilTheBlankLine) {
  constexpr std::string_view kResponse = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  ResponseHead head;
  for (std::size_t size = 0; size < kResponse.size(); ++size) {
    EXPECT_EQ(scan(kResponse.substr(0, size), &head), ScanStatus::kNeedMore) << size;
  }
  ASSERT_EQ(scan(kResponse, &head), ScanStatus::kComplete);
  EXPECT_EQ(head.status, 404);
  EXPECT_EQ(head.content_length, 0u);
}

TEST(ScanResponseHead, ConnectionClose) {
  ResponseHead head;
  ASSERT_EQ(scan("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 1\r\n\r\n", &head), ScanStatus::kComplete);
  EXPECT_TRUE(head.connection_close);
  ASSERT_EQ(scan("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", &head), ScanStatus::kComplete);
  EXPECT_TRUE(head.connection_close) << "HTTP/1.0 without keep-alive closes";
  ASSERT_EQ(scan("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", &head),
            ScanStatus::kComplete);
  EXPECT_FALSE(head.connection_close);
}

TEST(ScanResponseHead, RefusesWhatItCannotRead) {
  ResponseHead head;
  for (const std::string_view bad : {
           std::string_view("GARBAGE"),                                            // early: not HTTP/1.
           std::string_view("HTTP/2 200\r\n\r\n"),
           std::string_view("HTTP/1.1 20 OK\r\n\r\n"),
           std::string_view("HTTP/1.1 2x0 OK\r\n\r\n"),
           std::string_view("HTTP/1.1 200OK\r\n\r\n"),
           std::string_view("HTTP/1.1 200 OK\r\nno colon\r\n\r\n"),
           std::string_view("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n"),
           std::string_view("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
           std::string_view("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n"),
           std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"),
           std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"),
           std::string_view("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
       }) {
    EXPECT_EQ(scan(bad, &head), ScanStatus::kMalformed) << bad;
  }
}

// A server on the test's worker: answers every request (a head ending in a blank line) with `response`,
// written `piece` bytes at a time (0: in one write), and closes after `close_after` responses (0: never).
struct Script {
  std::string response;
  std::size_t piece = 0;
  int close_after = 0;
};

Task<void> serve_connection(TcpStream stream, const Script* script) {
  std::string pending;
  char buffer[4096];
  int answered = 0;
  for (;;) {
    auto got = co_await stream.read(MutableBuffer(buffer, sizeof(buffer)));
    if (!got || *got == 0) co_return;
    pending.append(buffer, *got);
    for (std::size_t end; (end = pending.find("\r\n\r\n")) != std::string::npos;) {
      pending.erase(0, end + 4);
      const std::string_view response = script->response;
      const std::size_t piece = script->piece == 0 ? response.size() : script->piece;
      for (std::size_t offset = 0; offset < response.size(); offset += piece) {
        if (!co_await stream.write_all(ConstBuffer(response.substr(offset, piece)))) co_return;
      }
      if (++answered == script->close_after) co_return;
    }
  }
}

Task<void> serve(TcpListener listener, const Script* script) {
  for (;;) {
    auto stream = co_await listener.accept();
    if (!stream) co_return;
    (void)Worker::current()->spawn(serve_connection(std::move(*stream), script));
  }
}

Result<SocketAddress> start_server(const Script* script) {
  auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  if (!listener) return listener.error();
  auto address = listener->local_addr();
  if (!address) return address.error();
  (void)Worker::current()->spawn(serve(std::move(*listener), script));
  return *address;
}

HttpLoadOptions short_run(SocketAddress address, int connections, int pipeline) {
  HttpLoadOptions options;
  options.address = address;
  options.host = address.to_string();
  options.connections = connections;
  options.pipeline = pipeline;
  options.warmup = 20ms;
  options.window = 150ms;
  return options;
}

class HttpLoadTest : public testing::BackendTest {};

TEST_P(HttpLoadTest, CountsResponsesSplitIntoPiecesAndPipelined) {
  EXPECT_TRUE(run([]() -> Task<void> {
    static const Script script{.response = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nServer: t\r\n\r\nHello, World!",
                               .piece = 7};
    auto address = start_server(&script);
    if (!address) {
      ADD_FAILURE() << address.error().message();
      co_return;
    }
    const int fds_before = testing::open_fd_count();
    bool window_started = false;
    bool window_ended = false;
    HttpLoadOptions options = short_run(*address, 8, 4);
    options.read_buffer_size = 1024;  // smaller than 4 responses: the buffer is compacted
    options.at_window_start = [&] { window_started = true; };
    options.at_window_end = [&] { window_ended = true; };
    auto result = co_await run_http_load(options);
    if (!result) {
      ADD_FAILURE() << result.error().message();
      co_return;
    }
    EXPECT_TRUE(window_started && window_ended);
    EXPECT_GT(result->requests, 0u);
    EXPECT_EQ(result->non_200, 0u);
    EXPECT_EQ(result->connection_errors, 0u) << result->first_connection_error;
    EXPECT_EQ(result->latencies->count(), result->requests);
    EXPECT_EQ(result->response_bytes, result->requests * script.response.size());
    EXPECT_GT(result->requests_per_second(), 0.0);
    // Both ends close asynchronously (a close on the ring, the server's sessions seeing the end of stream):
    // wait for them, bounded.
    for (int i = 0; i < 200 && testing::open_fd_count() != fds_before; ++i) (void)co_await sleep_for(10ms);
    EXPECT_EQ(testing::open_fd_count(), fds_before) << "a connection was left open";
  }()));
}

TEST_P(HttpLoadTest, BorrowedReadsCountResponsesSplitAcrossChunks) {
  EXPECT_TRUE(run([]() -> Task<void> {
    static const Script script{.response = "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + std::string(3000, 'x'),
                               .piece = 1000};
    auto address = start_server(&script);
    if (!address) {
      ADD_FAILURE() << address.error().message();
      co_return;
    }
    HttpLoadOptions options = short_run(*address, 4, 8);
    options.borrowed_reads = true;
    options.read_buffer_size = 2048;  // smaller than a chunk: a chunk is copied out in parts
    auto result = co_await run_http_load(options);
    if (!result) {
      ADD_FAILURE() << result.error().message();
      co_return;
    }
    EXPECT_GT(result->requests, 0u);
    EXPECT_EQ(result->connection_errors, 0u) << result->first_connection_error;
    EXPECT_EQ(result->response_bytes, result->requests * script.response.size());
  }()));
}

TEST_P(HttpLoadTest, CountsOtherStatusesWithoutFailing) {
  EXPECT_TRUE(run([]() -> Task<void> {
    static const Script script{.response = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"};
    auto address = start_server(&script);
    if (!address) {
      ADD_FAILURE() << address.error().message();
      co_return;
    }
    auto result = co_await run_http_load(short_run(*address, 4, 1));
    if (!result) {
      ADD_FAILURE() << result.error().message();
      co_return;
    }
    EXPECT_GT(result->requests, 0u);
    EXPECT_EQ(result->non_200, result->requests);
    EXPECT_EQ(result->connection_errors, 0u);
  }()));
}

TEST_P(HttpLoadTest, OpensAClosedConnectionAgainAndCountsIt) {
  EXPECT_TRUE(run([]() -> Task<void> {
    // Keep-alive for 10 responses, then the server closes without saying so: the 11th request is lost.
    static const Script script{.response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", .close_after = 10};
    auto address = start_server(&script);
    if (!address) {
      ADD_FAILURE() << address.error().message();
      co_return;
    }
    HttpLoadOptions options = short_run(*address, 2, 1);
    options.max_connection_errors = 1000000;
    auto result = co_await run_http_load(options);
    if (!result) {
      ADD_FAILURE() << result.error().message();
      co_return;
    }
    EXPECT_GT(result->requests, 10u) << "the connections were not opened again";
    EXPECT_GT(result->connection_errors, 0u);
    EXPECT_NE(result->first_connection_error.find("closed"), std::string::npos) << result->first_connection_error;
  }()));
}

TEST_P(HttpLoadTest, ConnectionCloseHeaderOpensAgain) {
  EXPECT_TRUE(run([]() -> Task<void> {
    static const Script script{.response = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
                               .close_after = 1};
    auto address = start_server(&script);
    if (!address) {
      ADD_FAILURE() << address.error().message();
      co_return;
    }
    HttpLoadOptions options = short_run(*address, 2, 1);
    options.max_connection_errors = 1000000;
    auto result = co_await run_http_load(options);
    if (!result) {
      ADD_FAILURE() << result.error().message();
      co_return;
    }
    EXPECT_GT(result->requests, 1u);
    EXPECT_GE(result->connection_errors, result->requests);
    EXPECT_NE(result->first_connection_error.find("Connection: close"), std::string::npos)
        << result->first_connection_error;
  }()));
}

TEST_P(HttpLoadTest, GivesUpOnAServerThatSendsGarbage) {
  EXPECT_TRUE(run([]() -> Task<void> {
    static const Script script{.response = "SSH-2.0-OpenSSH\r\n\r\n"};
    auto address = start_server(&script);
    if (!address) {
      ADD_FAILURE() << address.error().message();
      co_return;
    }
    HttpLoadOptions options = short_run(*address, 2, 1);
    options.max_connection_errors = 5;
    auto result = co_await run_http_load(options);
    if (result) {
      ADD_FAILURE() << "a run against garbage succeeded with " << result->requests << " requests";
      co_return;
    }
    EXPECT_EQ(result.error().code(), EPROTO) << result.error().message();
  }()));
}

TEST_P(HttpLoadTest, FailsWhenNothingListens) {
  EXPECT_TRUE(run([]() -> Task<void> {
    // A port that was free a moment ago: bind, read the port, close.
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    if (!listener) {
      ADD_FAILURE() << listener.error().message();
      co_return;
    }
    const SocketAddress address = *listener->local_addr();
    (void)listener->close();
    auto result = co_await run_http_load(short_run(address, 2, 1));
    if (result) {
      ADD_FAILURE() << "connected to a closed port";
      co_return;
    }
    EXPECT_EQ(result.error().code(), ECONNREFUSED) << result.error().message();
  }()));
}

TEST_P(HttpLoadTest, RefusesBadOptions) {
  EXPECT_TRUE(run([]() -> Task<void> {
    HttpLoadOptions options;
    options.connections = 0;
    auto result = co_await run_http_load(options);
    EXPECT_FALSE(result);
    if (!result) {
      EXPECT_EQ(result.error().code(), EINVAL);
    }
    options.connections = 1;
    options.pipeline = 0;
    result = co_await run_http_load(options);
    EXPECT_FALSE(result);
  }()));
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(HttpLoadTest);

}  // namespace
}  // namespace surge::bench
