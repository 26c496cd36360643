// shielded(): clean-up I/O that still runs when its task is being cancelled, bounded by its own limit,
// on every backend.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "net/tcp_stream.h"
#include "runtime/time.h"
#include "runtime/when.h"
#include "runtime/testing/backend_param.h"
#include "net/testing/stream_pair.h"

namespace surge {
namespace {

using std::chrono::milliseconds;
using testing::BackendTest;

class ShieldedTest : public BackendTest {};

// A session cancelled while it waits for a request says goodbye before it ends. Unshielded, the goodbye
// write fails at once with ECANCELED.
TEST_P(ShieldedTest, CancelledTaskCanStillSayGoodbye) {
  auto [server, client] = testing::stream_pair(*worker_);
  EXPECT_TRUE(run([](TcpStream& server, TcpStream& client) -> Task<void> {
    Worker& worker = *Worker::current();
    struct Outcome {
      bool read_cancelled = false;
      bool unshielded_cancelled = false;
      bool goodbye_sent = false;
    };
    auto session = worker.spawn([](TcpStream& s) -> Task<Outcome> {
      Outcome outcome;
      char buffer[16];
      auto request = co_await s.read(buffer);
      outcome.read_cancelled = !request && request.error().is_cancelled();
      auto unshielded = co_await s.write_all("lost");
      outcome.unshielded_cancelled = !unshielded && unshielded.error().is_cancelled();
      auto goodbye = co_await shielded(milliseconds(1000), s.write_all("bye"));
      outcome.goodbye_sent = static_cast<bool>(goodbye);
      co_return outcome;
    }(server));
    (void)co_await sleep_for(milliseconds(10));
    session.cancel();
    const Outcome outcome = co_await std::move(session);
    EXPECT_TRUE(outcome.read_cancelled);
    EXPECT_TRUE(outcome.unshielded_cancelled);
    EXPECT_TRUE(outcome.goodbye_sent);
    char got[3];
    auto read = co_await timeout(milliseconds(1000), client.read_exact(got));
    EXPECT_TRUE(read) << read.error().message();
    EXPECT_EQ(std::string(got, 3), "bye");
  }(server, client)));
}

// A cancellation that arrives while the shielded operation runs does not cut it short; the next
// unshielded await of the task sees it.
TEST_P(ShieldedTest, CancellationDuringTheShieldedWaitIsDeferred) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Worker& worker = *Worker::current();
    auto task = worker.spawn([]() -> Task<std::pair<bool, bool>> {
      auto slept = co_await shielded(milliseconds(1000), sleep_for(milliseconds(40)));
      auto after = co_await sleep_for(milliseconds(1000));
      co_return std::pair(static_cast<bool>(slept), !after && after.error().is_cancelled());
    }());
    (void)co_await sleep_for(milliseconds(10));
    task.cancel();
    const auto [shielded_finished, next_cancelled] = co_await std::move(task);
    EXPECT_TRUE(shielded_finished) << "the shielded sleep was cancelled";
    EXPECT_TRUE(next_cancelled) << "the cancellation was lost";
  }()));
}

// The limit bounds the shielded operation: a goodbye to a peer that never reads times out.
TEST_P(ShieldedTest, TheLimitBoundsTheShieldedOperation) {
  auto [server, client] = testing::stream_pair(*worker_);
  EXPECT_TRUE(run([](TcpStream& server) -> Task<void> {
    std::string huge(8u << 20, 'x');  // far more than the socket buffers hold; nobody reads
    const auto started = Worker::Clock::now();
    auto sent = co_await shielded(milliseconds(30), server.write_all(huge));
    EXPECT_FALSE(sent);
    if (!sent) {
      EXPECT_TRUE(sent.error().is_timed_out()) << sent.error().message();
    }
    EXPECT_LT(Worker::Clock::now() - started, milliseconds(2000));
  }(server)));
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(ShieldedTest);

}  // namespace
}  // namespace surge
