// The example HTTP/1.1 service (examples/http/server.h) end to end, over real loopback sockets, on each
// backend: a Runtime of 2 workers runs surge::http::serve() on 127.0.0.1 port 0, and the clients are plain
// blocking sockets on the test's thread (tests/http_test_client.h), every wait bounded, so that a hang is a
// failure with a message. The request parser's own cases are in examples/http/request_parser_test.cc; here
// is what the service does with them: routes, keep-alive and pipelining, bodies, every limit and deadline
// with its status and a lingering close, static files (no way out of the root), /metrics, graceful
// shutdown, many connections, hostile bytes, and curl.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "examples/http/server.h"
#include "net/socket_address.h"
#include "runtime/runtime.h"
#include "runtime/testing/backend_param.h"
#include "runtime/testing/fd_count.h"
#include "tests/http_test_client.h"

namespace surge::http {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using surge::testing::HttpClient;
using surge::testing::HttpResponse;
using surge::testing::TestClock;
using End = HttpClient::End;

constexpr std::string_view kGetPlaintext = "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n";
constexpr std::string_view kGetJson = "GET /json HTTP/1.1\r\nHost: t\r\n\r\n";
constexpr std::string_view kJson = R"({"message":"Hello, World!"})";

std::string post_echo(std::string_view body, std::string_view extra_headers = {}) {
  std::string request = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  request.append(extra_headers);
  request += "\r\n";
  request.append(body);
  return request;
}

std::string get(std::string_view target, std::string_view extra_headers = {}) {
  std::string request = "GET ";
  request.append(target);
  request += " HTTP/1.1\r\nHost: t\r\n";
  request.append(extra_headers);
  request += "\r\n";
  return request;
}

long long ms_since(TestClock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(TestClock::now() - start).count();
}

// Runs `work` on another thread; a hang past `limit` fails the test and aborts (the work still refers to
// the caller's frame, so there is no safe way to go on).
template <typename F>
void bounded(const char* what, seconds limit, F work) {
  auto done = std::async(std::launch::async, std::move(work));
  if (done.wait_for(limit) != std::future_status::ready) {
    ADD_FAILURE() << what << " did not return within " << limit.count() << " s";
    std::fflush(stdout);
    std::abort();
  }
  done.get();
}

// A response with status `status` (else the status it had, or why there was none).
::testing::AssertionResult has_status(const HttpResponse& response, int status) {
  if (response.status == status) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "status " << response.status << ", want " << status
                                       << (response.error.empty() ? "" : "; ") << response.error;
}
#define EXPECT_RESPONSE(response, want_status) EXPECT_TRUE(has_status((response), (want_status)))

class HttpServerTest : public ::testing::TestWithParam<BackendChoice> {
 protected:
  void SetUp() override {
    std::unique_ptr<Backend> probe;
    surge::testing::make_backend_or_skip(GetParam(), {}, probe);
  }
  void TearDown() override { stop(); }

  // Starts the service with `options` on `workers` workers of this test's backend.
  void start(ServiceOptions options = {}, std::size_t workers = 2) {
    auto runtime = Runtime::create({.workers = workers, .worker = {.backend = GetParam()}, .signals = {}});
    ASSERT_TRUE(runtime) << runtime.error().message();
    runtime_ = std::move(*runtime);
    service_ = std::make_shared<Service>(*runtime_, std::move(options));
    auto server = serve(*runtime_, SocketAddress::ipv4_loopback(0), service_);
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
    port_ = server_->local_addr().port();
  }

  void stop() {
    if (server_) bounded("Server::shutdown", seconds(20), [&] { server_->shutdown(milliseconds(0)); });
    server_.reset();
    service_.reset();
    if (runtime_) bounded("Runtime::shutdown", seconds(20), [&] { runtime_->shutdown(); });
    runtime_.reset();
  }

  HttpClient connect(int receive_buffer = 0) {
    HttpClient client = HttpClient::connect(port_, receive_buffer);
    EXPECT_TRUE(client.ok()) << client.error;
    return client;
  }

  // One request on a new connection, its response.
  HttpResponse fetch(std::string_view request, bool head_request = false) {
    HttpClient client = connect();
    if (!client.send(request)) {
      HttpResponse failed;
      failed.error = client.error;
      return failed;
    }
    return client.read_response(head_request);
  }

  // After an error response: it said "Connection: close", and the server then closes the connection
  // with a FIN (a lingering close), not a reset, and without more bytes.
  void expect_error_and_close(HttpClient& client, int status, const std::string& what) {
    SCOPED_TRACE(what);
    HttpResponse response = client.read_response();
    EXPECT_RESPONSE(response, status);
    EXPECT_EQ(response.header("connection"), "close");
    const End end = client.wait_for_end(seconds(5));
    EXPECT_EQ(end, End::kEof) << surge::testing::end_name(end) << "; extra bytes: " << client.buffered.substr(0, 200);
  }

  std::uint64_t count_of(int status) const {
    std::size_t slot = 0;
    while (slot < std::size(kCountedStatuses) && kCountedStatuses[slot] != status) ++slot;
    return service_->total().requests[slot];
  }

  std::unique_ptr<Runtime> runtime_;
  std::shared_ptr<Service> service_;
  std::unique_ptr<Server> server_;
  std::uint16_t port_ = 0;
};

// ---------------------------------------------------------------------------------------------------
// Routes

// "Sun, 06 Nov 1994 08:49:37 GMT", and within a few seconds of now.
void expect_date_now(const std::string& date) {
  static const std::regex kFormat(
      R"(^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT$)");
  EXPECT_TRUE(std::regex_match(date, kFormat)) << "Date: \"" << date << "\"";
  tm parsed{};
  const char* end = strptime(date.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &parsed);
  ASSERT_NE(end, nullptr) << date;
  const time_t when = timegm(&parsed);
  EXPECT_LE(std::llabs(static_cast<long long>(when - ::time(nullptr))), 5) << date;
}

TEST_P(HttpServerTest, PlaintextAndJson) {
  start();
  HttpClient client = connect();
  ASSERT_TRUE(client.send(kGetPlaintext));
  HttpResponse plain = client.read_response();
  EXPECT_RESPONSE(plain, 200);
  EXPECT_EQ(plain.version, "HTTP/1.1");
  EXPECT_EQ(plain.body, "Hello, World!");
  EXPECT_EQ(plain.header("content-length"), "13");
  EXPECT_EQ(plain.header("content-type"), "text/plain");
  EXPECT_FALSE(plain.has("connection"));  // HTTP/1.1 keep-alive is the default: nothing to say
  expect_date_now(plain.header("date"));

  ASSERT_TRUE(client.send(kGetJson));
  HttpResponse json = client.read_response();
  EXPECT_RESPONSE(json, 200);
  EXPECT_EQ(json.body, kJson);
  EXPECT_EQ(json.header("content-type"), "application/json");
  expect_date_now(json.header("date"));
}

// HEAD: the GET's headers (Content-Length included), no body: the next pipelined response follows the
// head at once.
TEST_P(HttpServerTest, HeadHasHeadersAndNoBody) {
  start();
  HttpClient client = connect();
  ASSERT_TRUE(client.send("HEAD /plaintext HTTP/1.1\r\nHost: t\r\n\r\nHEAD /json HTTP/1.1\r\nHost: t\r\n\r\n" +
                          std::string(kGetPlaintext)));
  HttpResponse head = client.read_response(/*head_request=*/true);
  EXPECT_RESPONSE(head, 200);
  EXPECT_EQ(head.header("content-length"), "13");
  EXPECT_EQ(head.header("content-type"), "text/plain");
  EXPECT_EQ(client.buffered.substr(0, 9), "HTTP/1.1 ") << "bytes after the HEAD response: " << client.buffered;
  HttpResponse json_head = client.read_response(true);
  EXPECT_RESPONSE(json_head, 200);
  EXPECT_EQ(json_head.header("content-length"), std::to_string(kJson.size()));
  HttpResponse get = client.read_response();
  EXPECT_RESPONSE(get, 200);
  EXPECT_EQ(get.body, "Hello, World!");
}

TEST_P(HttpServerTest, WrongMethodIs405WithAllow) {
  start();
  HttpClient client = connect();
  ASSERT_TRUE(client.send("DELETE /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"));
  HttpResponse wrong = client.read_response();
  EXPECT_RESPONSE(wrong, 405);
  EXPECT_EQ(wrong.header("allow"), "GET, HEAD");
  // The connection stays usable, and /echo only takes POST.
  ASSERT_TRUE(client.send(get("/echo")));
  HttpResponse echo = client.read_response();
  EXPECT_RESPONSE(echo, 405);
  EXPECT_EQ(echo.header("allow"), "POST");
  ASSERT_TRUE(client.send(post_echo("abc").replace(0, 5, "PUT ")));
  HttpResponse put = client.read_response();
  EXPECT_RESPONSE(put, 405);
  ASSERT_TRUE(client.send(kGetPlaintext));
  EXPECT_RESPONSE(client.read_response(), 200);
}

TEST_P(HttpServerTest, NoRootIs404) {
  start();
  HttpClient client = connect();
  for (const char* path : {"/", "/index.html", "/x/y.txt", "/plaintext/more"}) {
    ASSERT_TRUE(client.send(get(path)));
    HttpResponse missing = client.read_response();
    EXPECT_RESPONSE(missing, 404) << path;
  }
  ASSERT_TRUE(client.send(kGetPlaintext));
  EXPECT_RESPONSE(client.read_response(), 200);
}

// HTTP/1.0 closes after the response unless it asked for keep-alive; then the response says so.
TEST_P(HttpServerTest, Http10ClosesUnlessKeepAlive) {
  start();
  {
    HttpClient client = connect();
    ASSERT_TRUE(client.send("GET /plaintext HTTP/1.0\r\n\r\n"));
    HttpResponse response = client.read_response();
    EXPECT_RESPONSE(response, 200);
    EXPECT_EQ(response.version, "HTTP/1.0");
    EXPECT_EQ(response.body, "Hello, World!");
    EXPECT_EQ(response.header("connection"), "close");
    const End end = client.wait_for_end(seconds(5));
    EXPECT_EQ(end, End::kEof) << surge::testing::end_name(end);
  }
  HttpClient client = connect();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client.send("GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    HttpResponse response = client.read_response();
    EXPECT_RESPONSE(response, 200);
    EXPECT_EQ(response.version, "HTTP/1.0");
    EXPECT_EQ(response.body, kJson);
    EXPECT_EQ(response.header("connection"), "keep-alive");
  }
  // An HTTP/1.1 request asking to close gets "Connection: close" and a closed connection.
  ASSERT_TRUE(client.send("GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  HttpResponse last = client.read_response();
  EXPECT_RESPONSE(last, 200);
  EXPECT_EQ(last.header("connection"), "close");
  EXPECT_EQ(client.wait_for_end(seconds(5)), End::kEof);
}

// ---------------------------------------------------------------------------------------------------
// Keep-alive and pipelining

TEST_P(HttpServerTest, ManyRequestsOnOneConnection) {
  start();
  HttpClient client = connect();
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(client.send(i % 2 == 0 ? kGetPlaintext : kGetJson)) << client.error;
    HttpResponse response = client.read_response();
    ASSERT_EQ(response.status, 200) << "request " << i << ": " << response.error;
    EXPECT_EQ(response.body, i % 2 == 0 ? std::string_view("Hello, World!") : kJson);
  }
  EXPECT_EQ(service_->total().connections_accepted, 1u);
}

// The i-th of a pipelined batch: three kinds, the /echo ones numbered, so that order is visible.
std::string pipelined_request(int i) {
  switch (i % 3) {
    case 0:
      return std::string(kGetPlaintext);
    case 1:
      return std::string(kGetJson);
    default:
      return post_echo("request " + std::to_string(i));
  }
}
std::string pipelined_body(int i) {
  switch (i % 3) {
    case 0:
      return "Hello, World!";
    case 1:
      return std::string(kJson);
    default:
      return "request " + std::to_string(i);
  }
}

TEST_P(HttpServerTest, HundredPipelinedRequestsAnsweredInOrder) {
  start();
  HttpClient client = connect();
  for (int round = 0; round < 3; ++round) {
    std::string batch;
    for (int i = 0; i < 100; ++i) batch += pipelined_request(i + round);
    ASSERT_TRUE(client.send(batch)) << client.error;
    for (int i = 0; i < 100; ++i) {
      HttpResponse response = client.read_response();
      ASSERT_EQ(response.status, 200) << "round " << round << " response " << i << ": " << response.error;
      EXPECT_EQ(response.body, pipelined_body(i + round)) << "round " << round << " response " << i;
    }
    EXPECT_TRUE(client.buffered.empty());
  }
}

// More pipelined requests than one read holds, and answers past flush_bytes: the batch is answered in
// several writes, requests cut at the input buffer's end are completed by the next read, order is kept.
TEST_P(HttpServerTest, ThousandsOfPipelinedRequestsInOneSend) {
  start();
  HttpClient client = connect();
  std::string batch;
  for (int i = 0; i < 3000; ++i) batch += pipelined_request(i);
  std::atomic<int> send_error{0};
  std::thread sender([&] { send_error = client.send_raw(batch); });  // the answers flow back meanwhile
  for (int i = 0; i < 3000; ++i) {
    HttpResponse response = client.read_response();
    if (response.status != 200 || response.body != pipelined_body(i)) {
      ADD_FAILURE() << "response " << i << ": status " << response.status << " " << response.error << " body "
                    << response.body.substr(0, 40);
      break;
    }
  }
  sender.join();
  EXPECT_EQ(send_error.load(), 0);
}

// Two pipelined requests, sent in two parts split at every byte boundary (with a pause between them, so
// that the server sees each part on its own): both answered, in order, on one connection.
TEST_P(HttpServerTest, PipelinedPairSplitAtEveryByte) {
  start();
  HttpClient client = connect();
  const std::string pair = std::string(kGetPlaintext) + post_echo("hello");
  for (std::size_t split = 1; split < pair.size(); ++split) {
    ASSERT_TRUE(client.send(std::string_view(pair).substr(0, split))) << client.error;
    std::this_thread::sleep_for(milliseconds(2));
    ASSERT_TRUE(client.send(std::string_view(pair).substr(split))) << client.error;
    HttpResponse first = client.read_response();
    ASSERT_EQ(first.status, 200) << "split at " << split << ": " << first.error;
    EXPECT_EQ(first.body, "Hello, World!") << "split at " << split;
    HttpResponse second = client.read_response();
    ASSERT_EQ(second.status, 200) << "split at " << split << ": " << second.error;
    EXPECT_EQ(second.body, "hello") << "split at " << split;
  }
}

// ---------------------------------------------------------------------------------------------------
// Bodies

TEST_P(HttpServerTest, ContentLengthEcho) {
  start();
  HttpClient client = connect();
  ASSERT_TRUE(client.send(post_echo("hello, echo")));
  HttpResponse small = client.read_response();
  EXPECT_RESPONSE(small, 200);
  EXPECT_EQ(small.body, "hello, echo");
  EXPECT_EQ(small.header("content-type"), "application/octet-stream");
  // An empty body.
  ASSERT_TRUE(client.send(post_echo("")));
  HttpResponse empty = client.read_response();
  EXPECT_RESPONSE(empty, 200);
  EXPECT_EQ(empty.body, "");

  // 512 KiB in pieces of varied sizes, with pauses: the body is read as it arrives.
  std::string big(512 * 1024, '\0');
  std::mt19937 random(7);
  for (char& c : big) c = static_cast<char>(random());
  const std::string head =
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n";
  ASSERT_TRUE(client.send(head));
  std::size_t sent = 0;
  for (int piece = 0; sent < big.size(); ++piece) {
    const std::size_t size = std::min<std::size_t>(big.size() - sent, 1 + (piece * 7919) % 40000);
    ASSERT_TRUE(client.send(std::string_view(big).substr(sent, size))) << client.error;
    sent += size;
    if (piece % 8 == 0) std::this_thread::sleep_for(milliseconds(1));
  }
  HttpResponse echoed = client.read_response(false, seconds(10));
  EXPECT_RESPONSE(echoed, 200);
  EXPECT_EQ(echoed.body.size(), big.size());
  EXPECT_TRUE(echoed.body == big) << "the echoed 512 KiB differ";
  // Still in step.
  ASSERT_TRUE(client.send(kGetPlaintext));
  EXPECT_RESPONSE(client.read_response(), 200);
}

constexpr std::string_view kChunkedEcho =
    "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5;name=value\r\nhello\r\n"
    "1\r\n,\r\n"
    "6;a=b;quoted=\"x;y\"\r\n world\r\n"
    "A\r\n, chunked!\r\n"
    "0;last\r\nTrailer-One: 1\r\nTrailer-Two: two\r\n\r\n";
constexpr std::string_view kChunkedEchoBody = "hello, world, chunked!";

TEST_P(HttpServerTest, ChunkedEchoWithExtensionsAndTrailers) {
  start();
  HttpClient client = connect();
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(client.send(std::string(kChunkedEcho) + std::string(kGetPlaintext)));
    HttpResponse echoed = client.read_response();
    EXPECT_RESPONSE(echoed, 200);
    EXPECT_EQ(echoed.body, kChunkedEchoBody);
    EXPECT_EQ(echoed.header("content-length"), std::to_string(kChunkedEchoBody.size()));
    HttpResponse next = client.read_response();
    EXPECT_RESPONSE(next, 200);
    EXPECT_EQ(next.body, "Hello, World!");
  }
  // An empty chunked body.
  ASSERT_TRUE(client.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
  HttpResponse empty = client.read_response();
  EXPECT_RESPONSE(empty, 200);
  EXPECT_EQ(empty.body, "");
}

TEST_P(HttpServerTest, ChunkedEchoSentByteByByte) {
  start();
  HttpClient client = connect();
  const std::string request = std::string(kChunkedEcho) + std::string(kGetJson);
  for (char c : request) {
    ASSERT_TRUE(client.send(std::string_view(&c, 1))) << client.error;
    std::this_thread::sleep_for(milliseconds(1));
  }
  HttpResponse echoed = client.read_response();
  EXPECT_RESPONSE(echoed, 200);
  EXPECT_EQ(echoed.body, kChunkedEchoBody);
  HttpResponse json = client.read_response();
  EXPECT_RESPONSE(json, 200);
  EXPECT_EQ(json.body, kJson);
}

// "Expect: 100-continue": the interim response comes before the client sends the body.
TEST_P(HttpServerTest, ExpectContinueBeforeTheBody) {
  start();
  HttpClient client = connect();
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n"));
    HttpResponse interim = client.read_response(false, seconds(5));
    EXPECT_RESPONSE(interim, 100);
    EXPECT_EQ(interim.version, "HTTP/1.1");
    EXPECT_TRUE(client.buffered.empty());
    ASSERT_TRUE(client.send("hello there"));
    HttpResponse echoed = client.read_response();
    EXPECT_RESPONSE(echoed, 200);
    EXPECT_EQ(echoed.body, "hello there");
  }
  // Chunked, too.
  ASSERT_TRUE(
      client.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_RESPONSE(client.read_response(), 100);
  ASSERT_TRUE(client.send("3\r\nabc\r\n0\r\n\r\n"));
  HttpResponse chunked = client.read_response();
  EXPECT_RESPONSE(chunked, 200);
  EXPECT_EQ(chunked.body, "abc");
}

// A body on a route that does not want one is read and dropped; the pipelined request after it is
// answered.
TEST_P(HttpServerTest, BodyOnGetIsConsumed) {
  start();
  HttpClient client = connect();
  ASSERT_TRUE(
      client.send("GET /plaintext HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nGET /json " + std::string(kGetJson) +
                  "GET /plaintext HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nGET \r\n0\r\n\r\n" +
                  std::string(kGetJson)));
  for (std::string_view want : {std::string_view("Hello, World!"), kJson, std::string_view("Hello, World!"), kJson}) {
    HttpResponse response = client.read_response();
    EXPECT_RESPONSE(response, 200);
    EXPECT_EQ(response.body, want);
  }
}

// ---------------------------------------------------------------------------------------------------
// Limits: each gets its status, "Connection: close", and a lingering close.

ServiceOptions small_body_limit() {
  ServiceOptions options;
  options.limits.max_body_bytes = 4096;
  return options;
}

TEST_P(HttpServerTest, LimitsAndMalformedRequests) {
  start(small_body_limit());
  struct Case {
    const char* what;
    std::string request;
    int status;
  };
  std::string many_headers = "GET /plaintext HTTP/1.1\r\nHost: t\r\n";
  for (int i = 0; i < 70; ++i) many_headers += "X-Header-" + std::to_string(i) + ": v\r\n";
  many_headers += "\r\n";
  const std::vector<Case> cases = {
      {"head over 8 KiB", "GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n", 431},
      {"head over 8 KiB, no end in sight", "GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(20000, 'a'),
       431},
      {"too many headers", many_headers, 431},
      {"Content-Length and Transfer-Encoding",
       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
       400},
      {"malformed request line", "GARBAGE\r\nHost: t\r\n\r\n", 400},
      {"request line with no version", "GET /plaintext\r\nHost: t\r\n\r\n", 400},
      {"HTTP/1.1 without Host", "GET /plaintext HTTP/1.1\r\n\r\n", 400},
      {"bad Content-Length", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n", 400},
      {"HTTP/2.0", "GET /plaintext HTTP/2.0\r\nHost: t\r\n\r\n", 505},
      {"Transfer-Encoding: gzip", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"Content-Length over the limit", post_echo(std::string(5000, 'b')), 413},
      {"malformed chunk size", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
       400},
  };
  for (const Case& c : cases) {
    HttpClient client = connect();
    ASSERT_TRUE(client.send(c.request)) << c.what << ": " << client.error;
    expect_error_and_close(client, c.status, c.what);
  }
  // The same after good requests on the connection: the earlier answers arrive, then the error.
  HttpClient client = connect();
  ASSERT_TRUE(client.send(std::string(kGetPlaintext) + std::string(kGetJson) + "GET / HTTP/2.0\r\nHost: t\r\n\r\n"));
  EXPECT_RESPONSE(client.read_response(), 200);
  EXPECT_RESPONSE(client.read_response(), 200);
  expect_error_and_close(client, 505, "after two good requests");
  EXPECT_GE(count_of(431), 3u);
  EXPECT_GE(count_of(413), 1u);
}

// A client that goes on sending a body the server refused (413), also after it has the response, still
// reads the response and a clean end of stream, and none of its sends fail: the server drains what it
// sends (for up to linger_timeout) rather than closing with unread bytes, which would reset the
// connection (and, over a real network, could destroy the response before the client reads it).
void refused_while_sending(HttpClient& client, const std::string& head, const std::function<std::string()>& piece,
                           int status, const std::function<void(HttpClient&, int, const std::string&)>& expect) {
  ASSERT_TRUE(client.send(head));
  std::atomic<int> send_error{0};
  std::atomic<std::size_t> sent_bytes{0};
  std::atomic<bool> answered{false};
  std::atomic<int> sent_after_answer{0};
  std::thread sender([&] {
    const auto started = TestClock::now();
    const std::string data = piece();
    while (ms_since(started) < 5000 && sent_after_answer.load() < 100) {
      const bool after = answered.load();
      if (const int error = client.send_raw(data); error != 0) {
        send_error = error;
        return;
      }
      sent_bytes += data.size();
      if (after) ++sent_after_answer;
      std::this_thread::sleep_for(milliseconds(1));
    }
    ::shutdown(client.fd, SHUT_WR);
  });
  expect(client, status, "refused while the client sends");
  answered = true;
  sender.join();
  EXPECT_EQ(send_error.load(), 0) << "a send failed after " << sent_bytes.load() << " bytes ("
                                  << sent_after_answer.load()
                                  << " pieces after the response): " << std::strerror(send_error.load());
  EXPECT_EQ(sent_after_answer.load(), 100);
}

TEST_P(HttpServerTest, ContentLengthOverLimitWhileSending) {
  start(small_body_limit());
  HttpClient client = connect();
  const std::string head = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n";
  refused_while_sending(
      client, head, [] { return std::string(16 * 1024, 'x'); }, 413,
      [this](HttpClient& c, int status, const std::string& what) { expect_error_and_close(c, status, what); });
}

TEST_P(HttpServerTest, ChunkedOverLimitWhileSending) {
  start(small_body_limit());
  HttpClient client = connect();
  const std::string head = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  refused_while_sending(
      client, head, [] { return "400\r\n" + std::string(1024, 'y') + "\r\n"; }, 413,
      [this](HttpClient& c, int status, const std::string& what) { expect_error_and_close(c, status, what); });
}

// ---------------------------------------------------------------------------------------------------
// Deadlines

ServiceOptions short_timeouts() {
  ServiceOptions options;
  options.header_timeout = milliseconds(300);
  options.body_timeout = milliseconds(300);
  options.idle_timeout = milliseconds(400);
  options.write_timeout = milliseconds(500);
  options.linger_timeout = milliseconds(500);
  return options;
}

// Slow headers (a byte every 30 ms, never finished) get 408 within header_timeout of the first byte,
// while another client's requests are all answered meanwhile.
TEST_P(HttpServerTest, SlowHeadersGet408WhileOthersAreServed) {
  start(short_timeouts());
  HttpClient slow = connect();
  HttpClient other = connect();
  const std::string trickle = "GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Slow: " + std::string(4000, 's');
  const auto started = TestClock::now();
  int answered = 0;
  std::size_t at = 0;
  while (ms_since(started) < 5000) {
    if (at < trickle.size()) {
      ASSERT_TRUE(slow.send(std::string_view(trickle).substr(at++, 1))) << slow.error;
    }
    ASSERT_TRUE(other.send(kGetPlaintext)) << other.error;
    HttpResponse response = other.read_response();
    ASSERT_EQ(response.status, 200) << "the other client's request " << answered << ": " << response.error;
    ++answered;
    pollfd ready{slow.fd, POLLIN, 0};
    if (::poll(&ready, 1, 30) > 0) break;
  }
  const long long elapsed = ms_since(started);
  HttpResponse timed_out = slow.read_response();
  EXPECT_RESPONSE(timed_out, 408);
  EXPECT_EQ(timed_out.header("connection"), "close");
  EXPECT_GE(elapsed, 150) << "408 long before the header timeout";
  EXPECT_LT(elapsed, 4000) << "no 408 within the header timeout (300 ms) and generous slack";
  EXPECT_EQ(slow.wait_for_end(seconds(5)), End::kEof);
  EXPECT_GE(answered, 3) << "the other client was not served while the slow one trickled";
  EXPECT_GE(service_->total().timeouts, 1u);
}

// An idle keep-alive connection is closed after idle_timeout, silently (no 408: no request was begun);
// so is one that never sends anything.
TEST_P(HttpServerTest, IdleConnectionsAreClosed) {
  start(short_timeouts());
  HttpClient used = connect();
  HttpClient silent = connect();
  ASSERT_TRUE(used.send(kGetPlaintext));
  EXPECT_RESPONSE(used.read_response(), 200);
  const auto started = TestClock::now();
  const End end = used.wait_for_end(seconds(5));
  const long long elapsed = ms_since(started);
  EXPECT_EQ(end, End::kEof) << surge::testing::end_name(end) << ": " << used.buffered;
  EXPECT_GE(elapsed, 200);
  EXPECT_LT(elapsed, 4000);
  const End silent_end = silent.wait_for_end(seconds(5));
  EXPECT_EQ(silent_end, End::kEof) << surge::testing::end_name(silent_end) << ": " << silent.buffered;
}

// A body that stops arriving gets 408 after body_timeout.
TEST_P(HttpServerTest, StalledBodyGets408) {
  start(short_timeouts());
  HttpClient client = connect();
  ASSERT_TRUE(client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly ten.."));
  const auto started = TestClock::now();
  HttpResponse response = client.read_response();
  const long long elapsed = ms_since(started);
  EXPECT_RESPONSE(response, 408);
  EXPECT_EQ(response.header("connection"), "close");
  EXPECT_GE(elapsed, 150);
  EXPECT_LT(elapsed, 4000);
  EXPECT_EQ(client.wait_for_end(seconds(5)), End::kEof);
  // A chunked body likewise.
  HttpClient chunked = connect();
  ASSERT_TRUE(chunked.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc"));
  expect_error_and_close(chunked, 408, "stalled chunked body");
}

// A client that pipelines requests and never reads the responses: once the server's writes stall, the
// connection is reset within write_timeout (plus slack); another client is served all the while, and
// after. Memory stays bounded: the server stops reading while its write waits (else this client would
// never stall, and the test fails after 20 s), so it holds no more than its bounded buffers.
TEST_P(HttpServerTest, ClientThatNeverReadsIsReset) {
  start(short_timeouts());
  HttpClient hog = connect(/*receive_buffer=*/4096);
  HttpClient other = connect();
  ASSERT_TRUE(hog.ok() && other.ok());
  const int flags = ::fcntl(hog.fd, F_GETFL);
  ASSERT_EQ(::fcntl(hog.fd, F_SETFL, flags | O_NONBLOCK), 0);
  std::string batch;
  for (int i = 0; i < 1000; ++i) batch += kGetPlaintext;
  const auto started = TestClock::now();
  auto last_progress = TestClock::now();
  std::size_t offset = 0;
  std::uint64_t requests_sent = 0;
  bool reset = false;
  int others_served = 0;
  while (ms_since(started) < 20000) {
    const ssize_t n = ::send(hog.fd, batch.data() + offset, batch.size() - offset, MSG_NOSIGNAL);
    if (n > 0) {
      offset += static_cast<std::size_t>(n);
      requests_sent += static_cast<std::uint64_t>(n);
      if (offset == batch.size()) offset = 0;
      last_progress = TestClock::now();
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      reset = errno == ECONNRESET || errno == EPIPE;
      EXPECT_TRUE(reset) << "send: " << std::strerror(errno);
      break;
    }
    pollfd ready{hog.fd, POLLOUT, 0};
    const int polled = ::poll(&ready, 1, 50);
    if (polled > 0 && (ready.revents & (POLLERR | POLLHUP)) != 0) {
      reset = true;
      break;
    }
    // Stalled: the other client is still served.
    ASSERT_TRUE(other.send(kGetJson)) << other.error;
    HttpResponse response = other.read_response();
    ASSERT_EQ(response.status, 200) << "while the hog is stalled: " << response.error;
    ++others_served;
  }
  const long long stalled_for = std::chrono::duration_cast<milliseconds>(TestClock::now() - last_progress).count();
  ASSERT_TRUE(reset) << "the connection that does not read was not reset within 20 s (sent "
                     << requests_sent / kGetPlaintext.size() << " requests)";
  EXPECT_LT(stalled_for, 500 + 5000) << "reset long after write_timeout (500 ms) once the writes stalled";
  EXPECT_GE(others_served, 1);
  EXPECT_GE(service_->total().timeouts, 1u);
  // And still serving.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(other.send(kGetPlaintext));
    EXPECT_RESPONSE(other.read_response(), 200);
  }
  EXPECT_RESPONSE(fetch(kGetJson), 200);
}

// ---------------------------------------------------------------------------------------------------
// Static files

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/http_server_test.XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& contents, time_t modified = 1700000000) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  out.close();
  const timespec times[2] = {{modified, 0}, {modified, 0}};
  ::utimensat(AT_FDCWD, path.c_str(), times, 0);
}

constexpr std::string_view kSecret = "TOP SECRET: outside the root";
constexpr const char* kModified = "Tue, 14 Nov 2023 22:13:20 GMT";  // 1700000000

class StaticFilesTest : public HttpServerTest {
 protected:
  void SetUp() override {
    HttpServerTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_FALSE(dir_.path().empty());
    root_ = dir_.path() + "/root";
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((root_ + "/a").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((root_ + "/empty_dir").c_str(), 0755), 0);
    write_file(dir_.path() + "/secret.txt", std::string(kSecret));
    write_file(root_ + "/secret.txt.not", "decoy");
    write_file(root_ + "/index.html", "<h1>index</h1>\n");
    write_file(root_ + "/a/page.txt", "a page\n");
    write_file(root_ + "/style.css", "body{}\n");
    write_file(root_ + "/data.json", "{\"a\":1}\n");
    write_file(root_ + "/noextension", "plain bytes");
    write_file(root_ + "/empty.txt", "");
    big_.resize(1024 * 1024 + 123);
    std::mt19937 random(11);
    for (char& c : big_) c = static_cast<char>(random());
    write_file(root_ + "/big.bin", big_);
    ServiceOptions options;
    options.root = root_;
    start(options);
  }

  TempDir dir_;
  std::string root_;
  std::string big_;
};

TEST_P(StaticFilesTest, ContentTypeBytesAndLastModified) {
  HttpClient client = connect();
  struct Want {
    const char* path;
    const char* type;
    const char* body;
  };
  for (const Want& want : {Want{"/index.html", "text/html; charset=utf-8", "<h1>index</h1>\n"},
                           Want{"/", "text/html; charset=utf-8", "<h1>index</h1>\n"},
                           Want{"/a/page.txt", "text/plain; charset=utf-8", "a page\n"},
                           Want{"/a/./page.txt?query=1", "text/plain; charset=utf-8", "a page\n"},
                           Want{"/style.css", "text/css; charset=utf-8", "body{}\n"},
                           Want{"/data.json", "application/json", "{\"a\":1}\n"},
                           Want{"/noextension", "application/octet-stream", "plain bytes"},
                           Want{"/empty.txt", "text/plain; charset=utf-8", ""},
                           Want{"/%69ndex.html", "text/html; charset=utf-8", "<h1>index</h1>\n"}}) {
    ASSERT_TRUE(client.send(get(want.path))) << client.error;
    HttpResponse response = client.read_response();
    EXPECT_RESPONSE(response, 200) << want.path;
    EXPECT_EQ(response.header("content-type"), want.type) << want.path;
    EXPECT_EQ(response.body, want.body) << want.path;
    EXPECT_EQ(response.header("last-modified"), kModified) << want.path;
  }
  // HEAD: the size, no body.
  ASSERT_TRUE(client.send("HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"));
  HttpResponse head = client.read_response(true);
  EXPECT_RESPONSE(head, 200);
  EXPECT_EQ(head.header("content-length"), std::to_string(big_.size()));
  EXPECT_TRUE(client.buffered.empty());
}

TEST_P(StaticFilesTest, LargeFileByteForByte) {
  HttpClient client = connect();
  for (int i = 0; i < 2; ++i) {  // twice on one connection: the body ends where it should
    ASSERT_TRUE(client.send(get("/big.bin")));
    HttpResponse response = client.read_response(false, seconds(10));
    EXPECT_RESPONSE(response, 200);
    EXPECT_EQ(response.body.size(), big_.size());
    EXPECT_TRUE(response.body == big_) << "the 1 MiB file arrived changed";
  }
  // Pipelined behind a small one.
  ASSERT_TRUE(client.send(get("/a/page.txt") + get("/big.bin") + std::string(kGetPlaintext)));
  EXPECT_EQ(client.read_response().body, "a page\n");
  EXPECT_TRUE(client.read_response(false, seconds(10)).body == big_);
  EXPECT_EQ(client.read_response().body, "Hello, World!");
}

TEST_P(StaticFilesTest, IfModifiedSince) {
  HttpClient client = connect();
  // Equal and later: 304 without a body (the pipelined request after it parses right).
  for (const char* since : {kModified, "Wed, 15 Nov 2023 00:00:00 GMT", "Fri, 01 Jan 2100 00:00:00 GMT"}) {
    ASSERT_TRUE(client.send(get("/index.html", std::string("If-Modified-Since: ") + since + "\r\n") +
                            std::string(kGetPlaintext)));
    HttpResponse response = client.read_response();
    EXPECT_RESPONSE(response, 304) << since;
    EXPECT_EQ(response.header("last-modified"), kModified);
    EXPECT_FALSE(response.has("content-length") && response.header("content-length") != "0") << since;
    HttpResponse next = client.read_response();
    EXPECT_RESPONSE(next, 200);
    EXPECT_EQ(next.body, "Hello, World!") << "after the 304 for " << since;
  }
  // Earlier, or not a date: the file.
  for (const char* since : {"Tue, 14 Nov 2023 22:13:19 GMT", "Thu, 01 Jan 1970 00:00:00 GMT", "yesterday"}) {
    ASSERT_TRUE(client.send(get("/index.html", std::string("If-Modified-Since: ") + since + "\r\n")));
    HttpResponse response = client.read_response();
    EXPECT_RESPONSE(response, 200) << since;
    EXPECT_EQ(response.body, "<h1>index</h1>\n") << since;
  }
  EXPECT_GE(count_of(304), 3u);
}

TEST_P(StaticFilesTest, MissingFilesAndDirectories) {
  HttpClient client = connect();
  for (const char* path :
       {"/missing.html", "/a/missing", "/empty_dir", "/empty_dir/", "/a", "/index.html/x", "/secret.txt"}) {
    ASSERT_TRUE(client.send(get(path))) << client.error;
    HttpResponse response = client.read_response();
    EXPECT_RESPONSE(response, 404) << path;
    EXPECT_EQ(response.body.find(kSecret), std::string::npos) << path;
  }
  ASSERT_TRUE(client.send(get("/index.html")));
  EXPECT_RESPONSE(client.read_response(), 200);
}

// No way out of the root: the secret file next to it never appears, and each form is refused (400).
TEST_P(StaticFilesTest, PathTraversalIsRefused) {
  for (const char* path :
       {"/../secret.txt", "/a/../../secret.txt", "/a/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2e%2fsecret.txt",
        "/..%2fsecret.txt", "/a/%2e%2e/%2e%2e/secret.txt", "/index.html%00", "/%00../secret.txt", "/..", "/a/..",
        "/..%5csecret.txt%2f", "/%2fetc/passwd", "/%zz", "/%4"}) {
    HttpClient client = connect();
    ASSERT_TRUE(client.send(get(path))) << client.error;
    HttpResponse response = client.read_response();
    EXPECT_RESPONSE(response, 400) << path;
    EXPECT_EQ(response.body.find(kSecret), std::string::npos) << path;
    EXPECT_EQ(client.buffered.find(kSecret), std::string::npos) << path;
    EXPECT_EQ(client.wait_for_end(seconds(5)), End::kEof) << path;
  }
  // Targets that are not origin-form paths: never a file outside the root either.
  for (const char* target : {"../secret.txt", "http://t/../secret.txt", "*"}) {
    HttpClient client = connect();
    ASSERT_TRUE(client.send(get(target))) << client.error;
    HttpResponse response = client.read_response();
    EXPECT_NE(response.status, 200) << target << ": " << response.error;
    EXPECT_EQ(response.body.find(kSecret), std::string::npos) << target;
  }
}

// ---------------------------------------------------------------------------------------------------
// /metrics

std::uint64_t sum_of(const std::string& text, const std::regex& line) {
  std::uint64_t sum = 0;
  std::istringstream lines(text);
  std::string one;
  std::smatch match;
  while (std::getline(lines, one)) {
    if (std::regex_match(one, match, line)) sum += std::stoull(match[1].str());
  }
  return sum;
}

TEST_P(HttpServerTest, MetricsInPrometheusFormat) {
  start();
  HttpClient client = connect();
  ASSERT_TRUE(client.send(get("/metrics")));
  HttpResponse first = client.read_response();
  EXPECT_RESPONSE(first, 200);
  EXPECT_EQ(first.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? [0-9]+(\.[0-9]+)?$)");
  const std::regex comment(
      R"(^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))$)");
  ASSERT_FALSE(first.body.empty());
  EXPECT_EQ(first.body.back(), '\n');
  std::istringstream lines(first.body);
  std::string line;
  int samples = 0;
  while (std::getline(lines, line)) {
    EXPECT_TRUE(std::regex_match(line, sample) || std::regex_match(line, comment)) << "line: \"" << line << "\"";
    if (line[0] != '#') ++samples;
  }
  EXPECT_GT(samples, 10);
  const std::string backend = GetParam() == BackendChoice::kIoUring ? "io_uring" : "epoll";
  for (const char* family :
       {"surge_sqes_submitted_total", "surge_cqes_reaped_total", "surge_wait_syscalls_total", "surge_wakeups_total",
        "surge_lent_buffers_exhausted_total", "surge_operations_submitted_total", "http_connections_open"}) {
    EXPECT_NE(first.body.find(std::string("# TYPE ") + family + " "), std::string::npos) << family;
    for (int worker = 0; worker < 2; ++worker) {
      const std::string labels = "{worker=\"" + std::to_string(worker) + "\",backend=\"" + backend + "\"} ";
      EXPECT_NE(first.body.find(family + labels), std::string::npos) << family << labels;
    }
  }
  if (GetParam() == BackendChoice::kIoUring) {
    const std::regex sqes(R"(^surge_sqes_submitted_total\{[^}]*\} ([0-9]+)$)");
    EXPECT_GT(sum_of(first.body, sqes), 0u) << "io_uring submitted no SQE?";
  }
  // http_requests_total{code="200"} grows with the requests answered.
  const std::regex ok(R"(^http_requests_total\{[^}]*code="200"[^}]*\} ([0-9]+)$)");
  const std::uint64_t before = sum_of(first.body, ok);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(client.send(kGetPlaintext));
    EXPECT_RESPONSE(client.read_response(), 200);
  }
  EXPECT_RESPONSE(fetch(get("/nope")), 404);
  ASSERT_TRUE(client.send(get("/metrics")));
  HttpResponse second = client.read_response();
  EXPECT_RESPONSE(second, 200);
  EXPECT_GE(sum_of(second.body, ok), before + 11) << second.body;  // the 10 and the first /metrics
  const std::regex not_found(R"(^http_requests_total\{[^}]*code="404"[^}]*\} ([0-9]+)$)");
  EXPECT_EQ(sum_of(second.body, not_found), 1u);
  // HEAD /metrics: no body.
  ASSERT_TRUE(client.send("HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n" + std::string(kGetPlaintext)));
  EXPECT_RESPONSE(client.read_response(true), 200);
  EXPECT_EQ(client.read_response().body, "Hello, World!");
}

// ---------------------------------------------------------------------------------------------------
// Graceful shutdown

// drain() + shutdown(grace) with a request whose body is still arriving: it completes and its response
// says "Connection: close"; an idle keep-alive connection is closed at once; shutdown returns well before
// the grace period; new connections are refused.
TEST_P(HttpServerTest, GracefulShutdownFinishesRequestsInFlight) {
  start();
  HttpClient idle = connect();
  ASSERT_TRUE(idle.send(kGetPlaintext));
  EXPECT_RESPONSE(idle.read_response(), 200);
  HttpClient busy = connect();
  std::string body(2000, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  ASSERT_TRUE(busy.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n" + body.substr(0, 1000)));
  // The head is parsed and the body's read is waiting once the server has taken the bytes.
  for (int i = 0; i < 200 && service_->total().bytes_received < 1000 + kGetPlaintext.size(); ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  std::this_thread::sleep_for(milliseconds(50));

  const auto started = TestClock::now();
  std::atomic<long long> shutdown_ms{-1};
  std::thread stopper([&] {
    service_->drain();
    server_->shutdown(seconds(10));
    shutdown_ms = ms_since(started);
  });
  const End idle_end = idle.wait_for_end(seconds(5));
  EXPECT_EQ(idle_end, End::kEof) << surge::testing::end_name(idle_end);
  EXPECT_LT(ms_since(started), 3000) << "the idle connection was not closed promptly by drain()";

  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(shutdown_ms.load(), -1) << "shutdown returned with a request in flight";
  ASSERT_TRUE(busy.send(body.substr(1000))) << busy.error;
  HttpResponse response = busy.read_response();
  EXPECT_RESPONSE(response, 200);
  EXPECT_TRUE(response.body == body);
  EXPECT_EQ(response.header("connection"), "close");
  const End busy_end = busy.wait_for_end(seconds(5));
  EXPECT_EQ(busy_end, End::kEof) << surge::testing::end_name(busy_end);
  busy.close();  // else the server lingers on it (for linger_timeout) before shutdown can return

  bounded("the stopper thread", seconds(15), [&] { stopper.join(); });
  EXPECT_GE(shutdown_ms.load(), 0);
  EXPECT_LT(shutdown_ms.load(), 5000) << "shutdown waited for its grace period (10 s)";
  HttpClient late = HttpClient::connect(port_);
  EXPECT_FALSE(late.ok()) << "a connection was accepted after shutdown";
  EXPECT_EQ(late.connect_errno, ECONNREFUSED) << late.error;
}

// shutdown() with no grace cancels each connection at whatever await it is in (an idle read, a half head,
// a body read, a lingering close after an error, a write the client does not take): shutdown returns
// promptly, every client sees its connection end, and no descriptor is left open.
TEST_P(HttpServerTest, ShutdownWithoutGraceCancelsEveryConnection) {
  ServiceOptions options;
  options.linger_timeout = seconds(30);  // so that the lingering connection is still lingering
  start(options);
  const int baseline = surge::testing::open_fd_count();
  {
    HttpClient idle = connect();
    ASSERT_TRUE(idle.send(kGetPlaintext));
    EXPECT_RESPONSE(idle.read_response(), 200);
    HttpClient half_head = connect();
    ASSERT_TRUE(half_head.send("GET /plaintext HTTP/1.1\r\nHo"));
    HttpClient half_body = connect();
    ASSERT_TRUE(half_body.send(post_echo(std::string(100, 'b')).substr(0, 80)));
    HttpClient lingering = connect();
    ASSERT_TRUE(lingering.send("BAD\r\n\r\n"));
    EXPECT_RESPONSE(lingering.read_response(), 400);
    HttpClient hog = connect(/*receive_buffer=*/4096);
    std::string batch;
    for (int i = 0; i < 20000; ++i) batch += kGetPlaintext;
    std::thread hog_sender([&] { (void)hog.send_raw(batch); });  // stalls: nobody reads the answers
    for (int i = 0; i < 100 && service_->total().connections_open < 5; ++i)
      std::this_thread::sleep_for(milliseconds(10));
    std::this_thread::sleep_for(milliseconds(200));  // each connection reaches its await
    EXPECT_EQ(service_->total().connections_open, 5u);
    const auto started = TestClock::now();
    bounded("Server::shutdown(0)", seconds(15), [&] { server_->shutdown(milliseconds(0)); });
    EXPECT_LT(ms_since(started), 5000);
    EXPECT_EQ(service_->total().connections_open, 0u);
    for (HttpClient* client : {&idle, &half_head, &half_body, &lingering, &hog}) {
      const End end = client->read_to_end(seconds(5));
      EXPECT_TRUE(end == End::kEof || end == End::kReset) << surge::testing::end_name(end);
    }
    ::shutdown(hog.fd, SHUT_RDWR);  // ends the hog's blocked send, if it still is
    hog_sender.join();
  }
  int now = -1;
  for (int i = 0; i < 100; ++i) {
    now = surge::testing::open_fd_count();
    if (now <= baseline) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_LE(now, baseline) << "descriptors left open after shutdown";
}

// drain() alone closes an idle keep-alive connection.
TEST_P(HttpServerTest, DrainClosesIdleConnections) {
  start();
  HttpClient client = connect();
  ASSERT_TRUE(client.send(kGetPlaintext));
  EXPECT_RESPONSE(client.read_response(), 200);
  service_->drain();
  const End end = client.wait_for_end(seconds(5));
  EXPECT_EQ(end, End::kEof) << surge::testing::end_name(end);
}

// ---------------------------------------------------------------------------------------------------
// Load and hostile input

TEST_P(HttpServerTest, TwoHundredConnectionsAtOnce) {
  start();
  std::vector<HttpClient> clients;
  for (int i = 0; i < 200; ++i) {
    clients.push_back(connect());
    ASSERT_TRUE(clients.back().ok());
  }
  for (int round = 0; round < 2; ++round) {
    for (auto& client : clients) ASSERT_TRUE(client.send(std::string(kGetPlaintext) + std::string(kGetJson)));
    for (std::size_t i = 0; i < clients.size(); ++i) {
      HttpResponse plain = clients[i].read_response();
      ASSERT_EQ(plain.status, 200) << "client " << i << ": " << plain.error;
      EXPECT_EQ(plain.body, "Hello, World!");
      HttpResponse json = clients[i].read_response();
      ASSERT_EQ(json.status, 200) << "client " << i << ": " << json.error;
    }
  }
  EXPECT_EQ(service_->total().connections_accepted, 200u);
  EXPECT_EQ(service_->total().connections_open, 200u);
  // Both workers took some (SO_REUSEPORT spreads by a hash of the 4-tuple).
  EXPECT_GT(service_->stats(0).connections_accepted, 0u);
  EXPECT_GT(service_->stats(1).connections_accepted, 0u);
}

// Random bytes, and mutilated requests, on many connections: the server answers with an error status or
// closes, never hangs or crashes, leaks no descriptor, and serves a normal request afterwards.
TEST_P(HttpServerTest, RandomBytesNeverBreakTheServer) {
  ServiceOptions options = short_timeouts();
  options.root = "/nonexistent-root-for-the-fuzz-test";
  start(options);
  const int baseline = surge::testing::open_fd_count();
  std::uint64_t seed = std::random_device{}();
  if (const char* fixed = std::getenv("HTTP_TEST_SEED")) seed = std::strtoull(fixed, nullptr, 10);
  std::printf("HTTP_TEST_SEED=%llu\n", static_cast<unsigned long long>(seed));
  SCOPED_TRACE("HTTP_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 random(seed);
  const std::vector<std::string> templates = {
      std::string(kGetPlaintext), post_echo("hello"), std::string(kChunkedEcho),
      "GET /index.html HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: Tue, 14 Nov 2023 22:13:20 GMT\r\n\r\n",
      "HEAD /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"};
  auto payload = [&](int kind) {
    std::string bytes;
    switch (kind) {
      case 0: {  // pure noise
        bytes.resize(1 + random() % 3000);
        for (char& c : bytes) c = static_cast<char>(random());
        break;
      }
      case 1: {  // a request with a few bytes changed
        bytes = templates[random() % templates.size()];
        for (int flips = 1 + static_cast<int>(random() % 4); flips > 0; --flips) {
          bytes[random() % bytes.size()] = static_cast<char>(random());
        }
        break;
      }
      case 2: {  // a request line, then noise
        bytes = "GET /plaintext HTTP/1.1\r\n";
        for (std::size_t n = random() % 2000; n > 0; --n) bytes.push_back(static_cast<char>(random()));
        break;
      }
      default: {  // printable noise with line ends
        static constexpr char kAlphabet[] = "GETPOS /:.\r\n\r\nHTP1%0-9aZ;chunked Content-Length: ";
        bytes.resize(1 + random() % 1500);
        for (char& c : bytes) c = kAlphabet[random() % (sizeof(kAlphabet) - 1)];
        break;
      }
    }
    return bytes;
  };
  const std::regex status_line(R"(^HTTP/1\.[01] [1-5][0-9][0-9] )");
  int answered = 0;
  int closed_silently = 0;
  for (int batch = 0; batch < 6; ++batch) {
    std::vector<HttpClient> clients;
    for (int i = 0; i < 25; ++i) {
      clients.push_back(connect());
      ASSERT_TRUE(clients.back().ok());
      const std::string bytes = payload(static_cast<int>(random() % 4));
      (void)clients.back().send_raw(bytes);
      if (random() % 2 == 0) ::shutdown(clients.back().fd, SHUT_WR);
    }
    for (auto& client : clients) {
      // Every connection ends: by an error response and a close, or a close (the deadlines are short).
      const End final_end = client.read_to_end(seconds(8));
      const std::string& received = client.buffered;
      EXPECT_NE(final_end, End::kTimeout) << "a connection stayed open; received: " << received.substr(0, 200);
      EXPECT_NE(final_end, End::kError);
      if (received.empty()) {
        ++closed_silently;
      } else {
        ++answered;
        EXPECT_TRUE(std::regex_search(received, status_line)) << "not an HTTP response: " << received.substr(0, 200);
      }
    }
  }
  std::printf("random input: %d connections answered, %d closed without an answer\n", answered, closed_silently);
  EXPECT_GT(answered, 0);
  EXPECT_RESPONSE(fetch(kGetPlaintext), 200);
  // Every connection's descriptor is closed once the clients are gone.
  int now = -1;
  for (int i = 0; i < 100; ++i) {
    now = surge::testing::open_fd_count();
    if (now == baseline) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(now, baseline) << "descriptors leaked";
  EXPECT_EQ(service_->total().connections_open, 0u);
}

// ---------------------------------------------------------------------------------------------------
// curl

bool have_curl() { return ::access("/usr/bin/curl", X_OK) == 0; }

// Runs a shell command; its exit status.
int run_command(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

TEST_P(StaticFilesTest, Curl) {
  if (!have_curl()) GTEST_SKIP() << "/usr/bin/curl is not installed (tools/setup.sh installs it)";
  const std::string base = "http://127.0.0.1:" + std::to_string(port_);
  const std::string curl = "/usr/bin/curl --silent --show-error --noproxy '*' --max-time 10 ";
  const std::string out = dir_.path() + "/curl.out";
  ASSERT_EQ(run_command(curl + "-o '" + out + "' " + base + "/plaintext"), 0);
  EXPECT_EQ(read_file(out), "Hello, World!");
  ASSERT_EQ(run_command(curl + "-o '" + out + "' " + base + "/big.bin"), 0);
  EXPECT_TRUE(read_file(out) == big_) << "the 1 MiB file through curl differs";
  // A chunked upload (curl sends "Expect: 100-continue" with it) echoed back.
  const std::string upload = dir_.path() + "/upload.bin";
  std::string data(300 * 1024, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131) % 251);
  write_file(upload, data);
  ASSERT_EQ(run_command(curl + "-H 'Transfer-Encoding: chunked' --data-binary '@" + upload + "' -o '" + out + "' " +
                        base + "/echo"),
            0);
  EXPECT_TRUE(read_file(out) == data) << "the chunked upload came back changed (" << read_file(out).size() << " bytes)";
  // Keep-alive across URLs in one curl, and a 404's status.
  ASSERT_EQ(run_command(curl + "-o '" + out + "' -o /dev/null " + base + "/json " + base + "/a/page.txt"), 0);
  EXPECT_EQ(read_file(out), kJson);
  EXPECT_EQ(run_command(curl + "--fail -o /dev/null " + base + "/missing 2>/dev/null"), 22);
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(HttpServerTest);
SURGE_INSTANTIATE_FOR_EACH_BACKEND(StaticFilesTest);

}  // namespace
}  // namespace surge::http
