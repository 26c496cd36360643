// The example HTTP service's /plaintext path allocates nothing per request: after warm-up, requests on a
// keep-alive connection (one at a time, and pipelined in batches) make no call to operator new in the
// server, on each backend. The server runs on its own Runtime worker; the client is a plain socket on the
// test's thread, whose own allocations are subtracted (allocation_count() counts the whole process,
// thread_allocation_count() this thread). Counted by //runtime/testing:allocation_counter, which replaces
// operator new in this binary.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <new>
#include <string>

#include "examples/http/server.h"
#include "net/socket_address.h"
#include "runtime/runtime.h"
#include "runtime/testing/allocation_counter.h"
#include "runtime/testing/backend_param.h"
#include "tests/http_test_client.h"

namespace surge::http {
namespace {

using surge::testing::HttpClient;
using surge::testing::HttpResponse;

constexpr std::string_view kGetPlaintext = "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n";

// Whether this binary's operator new is the counting one (a sanitizer runtime's could win the link).
bool counter_is_active() {
  const std::uint64_t before = surge::testing::allocation_count();
  ::operator delete(::operator new(1));
  return surge::testing::allocation_count() - before == 1;
}

// Allocations made by every thread but this one, while `work` runs.
template <typename F>
std::uint64_t others_allocations(F work) {
  const std::uint64_t all_before = surge::testing::allocation_count();
  const std::uint64_t mine_before = surge::testing::thread_allocation_count();
  work();
  const std::uint64_t all = surge::testing::allocation_count() - all_before;
  const std::uint64_t mine = surge::testing::thread_allocation_count() - mine_before;
  return all - mine;
}

class HttpAllocationTest : public ::testing::TestWithParam<BackendChoice> {
 protected:
  void SetUp() override {
    if (!counter_is_active()) GTEST_SKIP() << "the counting operator new is not the one linked in";
    std::unique_ptr<Backend> probe;
    surge::testing::make_backend_or_skip(GetParam(), {}, probe);
    if (IsSkipped() || HasFatalFailure()) return;
    auto runtime = Runtime::create({.workers = 1, .worker = {.backend = GetParam()}, .signals = {}});
    ASSERT_TRUE(runtime) << runtime.error().message();
    runtime_ = std::move(*runtime);
    service_ = std::make_shared<Service>(*runtime_, ServiceOptions{});
    auto server = serve(*runtime_, SocketAddress::ipv4_loopback(0), service_);
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
  }
  void TearDown() override {
    if (server_) server_->shutdown(std::chrono::milliseconds(0));
    server_.reset();
    service_.reset();
    if (runtime_) runtime_->shutdown();
  }

  // `rounds` times: `batch` pipelined /plaintext requests in one send, then their responses.
  static bool exchange(HttpClient& client, int rounds, int batch, const std::string& requests, std::string& error) {
    for (int round = 0; round < rounds; ++round) {
      if (!client.send(requests)) {
        error = client.error;
        return false;
      }
      for (int i = 0; i < batch; ++i) {
        HttpResponse response = client.read_response();
        if (response.status != 200 || response.body != "Hello, World!") {
          error =
              "round " + std::to_string(round) + ": status " + std::to_string(response.status) + " " + response.error;
          return false;
        }
      }
    }
    return true;
  }

  void expect_no_allocations(int batch) {
    HttpClient client = HttpClient::connect(server_->local_addr().port());
    ASSERT_TRUE(client.ok()) << client.error;
    std::string requests;
    for (int i = 0; i < batch; ++i) requests += kGetPlaintext;
    std::string error;
    // Warm-up: the connection's task and buffers, the timer wheel's slots, the Date cache.
    ASSERT_TRUE(exchange(client, 200, batch, requests, error)) << error;
    client.buffered.reserve(1 << 16);
    const std::uint64_t server_allocations = others_allocations([&] {
      const bool ok = exchange(client, 1000, batch, requests, error);
      EXPECT_TRUE(ok) << error;
    });
    EXPECT_EQ(server_allocations, 0u) << "operator new calls in the server for " << 1000 * batch
                                      << " /plaintext requests (" << batch << " per send)";
  }

  std::unique_ptr<Runtime> runtime_;
  std::shared_ptr<Service> service_;
  std::unique_ptr<Server> server_;
};

TEST_P(HttpAllocationTest, KeepAlivePlaintextAllocatesNothing) { expect_no_allocations(1); }

TEST_P(HttpAllocationTest, PipelinedPlaintextAllocatesNothing) { expect_no_allocations(16); }

// The subtraction must be able to see the server's allocations: /metrics builds a string per request.
TEST_P(HttpAllocationTest, MetricsRequestsDoAllocate) {
  HttpClient client = HttpClient::connect(server_->local_addr().port());
  ASSERT_TRUE(client.ok()) << client.error;
  const std::uint64_t allocations = others_allocations([&] {
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(client.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"));
      EXPECT_EQ(client.read_response().status, 200);
    }
  });
  EXPECT_GE(allocations, 10u);
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(HttpAllocationTest);

}  // namespace
}  // namespace surge::http
