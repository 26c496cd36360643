// The I/O budget (BackendOptions::max_completions_per_poll) holds completions back for later polls; what
// it holds back must not pile up. With a budget of 4 and 64 connections echoing at once, far more
// completions arrive per loop turn than one poll delivers: io_uring leaves the surplus in its completion
// queue (the kernel keeps it) instead of copying it into a backlog that grows by one entry per CQE. epoll
// has no backlog; the same load runs there as a check that the budget loses nothing.
#include <gtest/gtest.h>

#include <vector>

#include "examples/echo.h"
#include "net/socket_address.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/backend/io_uring/io_uring_backend.h"
#include "runtime/testing/backend_param.h"

namespace surge {
namespace {

using testing::BackendTest;

constexpr unsigned kCompletionQueueEntries = 256;
constexpr int kConnections = 64;
constexpr int kRoundTrips = 200;

class CompletionBacklogTest : public BackendTest {};

Task<Result<void>> echo_round_trips(SocketAddress address, int connection) {
  auto stream = co_await TcpStream::connect(address);
  if (!stream) co_return stream.error();
  std::vector<unsigned char> message(64, static_cast<unsigned char>(connection));
  std::vector<unsigned char> echoed(64);
  for (int i = 0; i < kRoundTrips; ++i) {
    message[0] = static_cast<unsigned char>(i);
    if (auto sent = co_await stream->write_all(message); !sent) co_return sent.error();
    if (auto got = co_await stream->read_exact(echoed); !got) co_return got.error();
    if (echoed != message) co_return Error(EBADMSG, "echo differs");
  }
  co_return ok();
}

TEST_P(CompletionBacklogTest, SmallBudgetUnderLoadKeepsTheBacklogBounded) {
  create_worker({.completion_queue_entries = kCompletionQueueEntries, .max_completions_per_poll = 4});
  EXPECT_TRUE(run([]() -> Task<void> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    EXPECT_TRUE(listener) << listener.error().message();
    if (!listener) co_return;
    const SocketAddress address = *listener->local_addr();
    auto server = Worker::current()->spawn(examples::serve_echo(std::move(*listener)));
    std::vector<JoinHandle<Result<void>>> clients;
    for (int i = 0; i < kConnections; ++i) clients.push_back(Worker::current()->spawn(echo_round_trips(address, i)));
    for (int i = 0; i < kConnections; ++i) {
      auto done = co_await std::move(clients[static_cast<std::size_t>(i)]);
      EXPECT_TRUE(done) << "connection " << i << ": " << done.error().message();
    }
    server.cancel();
    (void)co_await std::move(server);
  }(), std::chrono::seconds(30)));
  if (auto* io_uring = dynamic_cast<IoUringBackend*>(&internal::WorkerAccess::backend(*worker_))) {
    // 64 x 200 round trips post some 50,000 CQEs; what may be held back at once is the budget plus what
    // the completion queue holds (and, after an EBUSY from a full queue, what its overflow held).
    EXPECT_LE(io_uring->completion_backlog_capacity_for_testing(), 4 * kCompletionQueueEntries);
  }
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(CompletionBacklogTest);

}  // namespace
}  // namespace surge
