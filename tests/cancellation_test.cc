// Cancellation on every backend: a waiting read, a read racing its own completion, a connect, an
// accept, a sleep, write_all between chunks, when_any/timeout around an echo, and cancel propagation.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include "examples/echo.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/time.h"
#include "runtime/when.h"
#include "runtime/testing/backend_param.h"
#include "runtime/testing/fd_count.h"
#include "net/testing/stream_pair.h"

namespace surge {
namespace {

using std::chrono::milliseconds;
using testing::BackendTest;

class CancellationTest : public BackendTest {
 protected:
  std::pair<TcpStream, TcpStream> stream_pair() { return testing::stream_pair(*worker_); }
};


TEST_P(CancellationTest, CancelAWaitingRead) {
  auto [a, b] = stream_pair();
  EXPECT_TRUE(run([](TcpStream& reader) -> Task<void> {
    Worker& worker = *Worker::current();
    auto handle = worker.spawn([](TcpStream& s) -> Task<Result<std::size_t>> {
      char buffer[8];
      co_return co_await s.read(buffer);
    }(reader));
    co_await testing::settle();
    EXPECT_EQ(internal::WorkerAccess::backend(worker).in_flight(), 1u);
    handle.cancel();
    auto outcome = co_await std::move(handle);
    EXPECT_FALSE(outcome);
    if (!outcome) {
      EXPECT_TRUE(outcome.error().is_cancelled()) << outcome.error().message();
    }
    EXPECT_EQ(internal::WorkerAccess::backend(worker).in_flight(), 0u);
  }(a)));
}

TEST_P(CancellationTest, ReadRacingItsCompletionLosesNoData) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  auto [a, b] = stream_pair();
  EXPECT_TRUE(run([](TcpStream& reader, TcpStream& writer, unsigned seed) -> Task<void> {
    Worker& worker = *Worker::current();
    std::mt19937 random(seed);
    std::string received;
    std::string sent;
    for (int round = 0; round < 200; ++round) {
      auto handle = worker.spawn([](TcpStream& s) -> Task<Result<std::string>> {
        char buffer[64];
        auto n = co_await s.read(buffer);
        if (!n) co_return n.error();
        co_return std::string(buffer, *n);
      }(reader));
      const std::string payload = "r" + std::to_string(round) + ";";
      const int yields_before_write = static_cast<int>(random() % 3);
      const int yields_before_cancel = static_cast<int>(random() % 3);
      for (int i = 0; i < yields_before_write; ++i) co_await yield();
      EXPECT_TRUE(co_await writer.write_all(payload));
      sent += payload;
      for (int i = 0; i < yields_before_cancel; ++i) co_await yield();
      handle.cancel();
      auto outcome = co_await std::move(handle);
      if (outcome) {
        received += *outcome;
      } else {
        EXPECT_TRUE(outcome.error().is_cancelled()) << outcome.error().message();
      }
    }
    // Whatever the cancelled reads did not take is still in the socket, in order.
    EXPECT_TRUE(writer.shutdown(Shutdown::kWrite));
    char buffer[4096];
    for (;;) {
      auto n = co_await reader.read(buffer);
      EXPECT_TRUE(n);
      if (!n || *n == 0) break;
      received.append(buffer, *n);
    }
    EXPECT_EQ(received, sent);
  }(a, b, seed)));
}

TEST_P(CancellationTest, CancelAConnectThatCannotComplete) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Worker& worker = *Worker::current();
    // A listener nobody accepts from, with the smallest backlog: once its queue is full the kernel
    // drops further SYNs and a new connect stays in SYN_SENT.
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0), {.backlog = 0});
    EXPECT_TRUE(listener);
    if (!listener) co_return;
    const auto address = *listener->local_addr();
    std::vector<TcpStream> fillers;
    JoinHandle<Result<TcpStream>> pending;
    for (int i = 0; i < 16 && !pending.valid(); ++i) {
      auto attempt = worker.spawn(TcpStream::connect(address));
      co_await sleep_for(milliseconds(20));
      if (attempt.is_finished()) {
        auto stream = attempt.take_result();
        EXPECT_TRUE(stream) << stream.error().message();
        if (stream) fillers.push_back(std::move(*stream));
      } else {
        pending = std::move(attempt);
      }
    }
    EXPECT_TRUE(pending.valid()) << "every connect completed: cannot test cancelling one";
    if (!pending.valid()) co_return;
    pending.cancel();
    auto outcome = co_await std::move(pending);
    EXPECT_FALSE(outcome);
    if (!outcome) {
      EXPECT_TRUE(outcome.error().is_cancelled()) << outcome.error().message();
    }
  }()));
}

TEST_P(CancellationTest, CancelAnAcceptAndRaceOne) {
  worker_.reset();
  const int fds_before = testing::open_fd_count();
  create_worker({});
  EXPECT_TRUE(run([]() -> Task<void> {
    Worker& worker = *Worker::current();
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    const auto address = *listener->local_addr();
    auto accepting = worker.spawn([](TcpListener& l) -> Task<Result<TcpStream>> { co_return co_await l.accept(); }(
        *listener));
    co_await testing::settle();
    accepting.cancel();
    auto outcome = co_await std::move(accepting);
    EXPECT_FALSE(outcome);
    if (!outcome) {
      EXPECT_TRUE(outcome.error().is_cancelled());
    }

    // Race: a connection arrives while the accept is being cancelled. Either the accept is cancelled
    // (and the connection waits in the backlog) or it returns the stream; nothing leaks either way.
    for (int round = 0; round < 20; ++round) {
      auto racing = worker.spawn([](TcpListener& l) -> Task<Result<TcpStream>> { co_return co_await l.accept(); }(
          *listener));
      co_await testing::settle();
      auto client = co_await TcpStream::connect(address);
      EXPECT_TRUE(client);
      racing.cancel();
      auto raced = co_await std::move(racing);
      if (!raced) {
        EXPECT_TRUE(raced.error().is_cancelled());
        auto late = co_await listener->accept();  // the connection is still there to accept
        EXPECT_TRUE(late);
      }
    }
  }()));
  worker_.reset();
  EXPECT_EQ(testing::open_fd_count(), fds_before);
}

TEST_P(CancellationTest, CancelASleep) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Worker& worker = *Worker::current();
    const auto start = Worker::Clock::now();
    auto sleeper = worker.spawn([]() -> Task<Result<void>> { co_return co_await sleep_for(std::chrono::hours(1)); }());
    co_await testing::settle();
    sleeper.cancel();
    auto outcome = co_await std::move(sleeper);
    EXPECT_FALSE(outcome);
    if (!outcome) {
      EXPECT_TRUE(outcome.error().is_cancelled());
    }
    EXPECT_LT(Worker::Clock::now() - start, std::chrono::seconds(5));
    EXPECT_TRUE(internal::WorkerAccess::timers(worker).empty()) << "the cancelled sleep left its timer behind";
  }()));
}

TEST_P(CancellationTest, CancelBeforeStartNeverStartsTheOperation) {
  auto [a, b] = stream_pair();
  EXPECT_TRUE(run([](TcpStream& reader, TcpStream& writer) -> Task<void> {
    Worker& worker = *Worker::current();
    EXPECT_TRUE(co_await writer.write_all("data"));
    auto handle = worker.spawn([](TcpStream& s) -> Task<Result<std::size_t>> {
      char buffer[8];
      co_return co_await s.read(buffer);
    }(reader));
    handle.cancel();  // before the task has even started
    auto outcome = co_await std::move(handle);
    EXPECT_FALSE(outcome);
    char buffer[4];
    EXPECT_TRUE(co_await reader.read_exact(buffer)) << "the data must still be in the socket";
  }(a, b)));
}

TEST_P(CancellationTest, CancelPropagatesThroughNestedTasksAndJoins) {
  auto [a, b] = stream_pair();
  EXPECT_TRUE(run([](TcpStream& reader) -> Task<void> {
    Worker& worker = *Worker::current();
    auto inner = [](TcpStream& s) -> Task<Result<std::size_t>> {
      char buffer[8];
      co_return co_await s.read(buffer);
    };
    auto middle = [](Worker& w, TcpStream& s, decltype(inner) body) -> Task<Result<std::size_t>> {
      // Awaits a task spawned separately: cancelling `middle` must reach it through the join.
      co_return co_await w.spawn(body(s));
    };
    auto outer = worker.spawn(middle(worker, reader, inner));
    co_await testing::settle();
    outer.cancel();
    auto outcome = co_await std::move(outer);
    EXPECT_FALSE(outcome);
    if (!outcome) {
      EXPECT_TRUE(outcome.error().is_cancelled());
    }
    EXPECT_EQ(internal::WorkerAccess::backend(worker).in_flight(), 0u);
    EXPECT_EQ(worker.live_tasks(), 1u);  // only this test's root is left
  }(a)));
}

TEST_P(CancellationTest, TimeoutAroundAnEcho) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Worker& worker = *Worker::current();
    auto echo_listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    const auto echo_address = *echo_listener->local_addr();
    (void)worker.spawn(examples::serve_echo(std::move(*echo_listener)));
    auto silent_listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));  // accepts, never answers
    const auto silent_address = *silent_listener->local_addr();

    auto echo = co_await TcpStream::connect(echo_address);
    EXPECT_TRUE(co_await echo->write_all("ping"));
    char reply[4];
    auto answered = co_await timeout(milliseconds(2000), echo->read_exact(reply));
    EXPECT_TRUE(answered) << answered.error().message();

    auto silent = co_await TcpStream::connect(silent_address);
    EXPECT_TRUE(co_await silent->write_all("ping"));
    const auto start = Worker::Clock::now();
    auto unanswered = co_await timeout(milliseconds(30), silent->read(reply));
    const auto waited = Worker::Clock::now() - start;
    EXPECT_FALSE(unanswered);
    if (!unanswered) {
      EXPECT_TRUE(unanswered.error().is_timed_out()) << unanswered.error().message();
      EXPECT_STREQ(unanswered.error().operation(), "recv");
    }
    EXPECT_GE(waited, milliseconds(30)) << "timed out early";
    // Left in flight: the echo server's accept and its session's recv; not the timed-out read. With
    // multishot accept the listener's armed request is one more.
    const std::size_t accept_request = worker.features().uses_multishot_accept ? 1 : 0;
    EXPECT_EQ(internal::WorkerAccess::backend(worker).in_flight(), 2u + accept_request);
  }()));
}

// Deadlines on socket operations: single-step operations (linked timeout SQE on io_uring, or the timer
// wheel when that is disabled), multi-step ones (always the wheel), deadlines already passed, and an
// explicit cancel racing a deadline.
Task<void> deadline_checks(TcpStream& reader, TcpStream& writer) {
  Worker& worker = *Worker::current();
  char buffer[8];
  auto single = co_await timeout(milliseconds(20), reader.read(buffer));
  EXPECT_FALSE(single);
  if (!single) {
    EXPECT_TRUE(single.error().is_timed_out()) << single.error().message();
  }
  auto multi = co_await timeout(milliseconds(20), reader.read_exact(buffer));
  EXPECT_FALSE(multi);
  if (!multi) {
    EXPECT_TRUE(multi.error().is_timed_out()) << multi.error().message();
  }
  EXPECT_TRUE(internal::WorkerAccess::timers(worker).empty()) << "a deadline left its timer behind";

  // Data that is there beats the deadline.
  EXPECT_TRUE(co_await writer.write_all("ok"));
  auto in_time = co_await timeout(milliseconds(500), reader.read(buffer));
  EXPECT_TRUE(in_time);
  EXPECT_TRUE(internal::WorkerAccess::timers(worker).empty());

  // A deadline in the past: the operation does not start, the data stays in the socket.
  EXPECT_TRUE(co_await writer.write_all("xy"));
  auto expired = co_await timeout(milliseconds(-1), reader.read(buffer));
  EXPECT_FALSE(expired);
  if (!expired) {
    EXPECT_TRUE(expired.error().is_timed_out());
  }
  auto still_there = co_await reader.read_exact(MutableBuffer(buffer, 2));
  EXPECT_TRUE(still_there);

  // Cancelled explicitly before the deadline: ECANCELED, not ETIMEDOUT.
  auto cancelled = worker.spawn([](TcpStream& s) -> Task<Result<std::size_t>> {
    char b[8];
    co_return co_await timeout(std::chrono::seconds(30), s.read(b));
  }(reader));
  co_await testing::settle();
  cancelled.cancel();
  auto outcome = co_await std::move(cancelled);
  EXPECT_FALSE(outcome);
  if (!outcome) {
    EXPECT_TRUE(outcome.error().is_cancelled()) << outcome.error().message();
  }
  EXPECT_EQ(internal::WorkerAccess::backend(worker).in_flight(), 0u);
}

TEST_P(CancellationTest, DeadlinesOnSocketOperations) {
  auto [a, b] = stream_pair();
  EXPECT_TRUE(run(deadline_checks(a, b)));
}

TEST_P(CancellationTest, DeadlinesAsLinkedTimeoutsWhereTheBackendHasThem) {
  BackendOptions options;
  options.allow_linked_timeouts = true;
  create_worker(options);
  if (!worker_) return;
  EXPECT_EQ(internal::WorkerAccess::backend(*worker_).supports_linked_timeouts(), GetParam() == BackendChoice::kIoUring);
  auto [a, b] = stream_pair();
  EXPECT_TRUE(run(deadline_checks(a, b)));
}

// A limit too large for the clock to count is no limit: the operation completes when the data arrives
// (30 ms later), not with ETIMEDOUT at once, and leaves no timer behind.
Task<void> huge_timeout_checks(TcpStream& reader, TcpStream& writer) {
  Worker& worker = *Worker::current();
  const auto write_later = [](TcpStream& s, std::string_view text) -> Task<void> {
    co_await sleep_for(milliseconds(30));
    EXPECT_TRUE(co_await s.write_all(text));
  };
  char buffer[8];
  (void)worker.spawn(write_later(writer, "one"));
  auto single = co_await timeout(std::chrono::nanoseconds::max(), reader.read(buffer));
  EXPECT_TRUE(single) << single.error().message();
  if (single) {
    EXPECT_EQ(*single, 3u);
  }

  (void)worker.spawn(write_later(writer, "two"));
  auto multi = co_await timeout(std::chrono::hours::max(), reader.read_exact(MutableBuffer(buffer, 3)));
  EXPECT_TRUE(multi) << multi.error().message();

  // A Task races a sleep of that length, which must not win either.
  (void)worker.spawn(write_later(writer, "six"));
  auto task = co_await timeout(std::chrono::hours::max(), [](TcpStream& s) -> Task<Result<std::size_t>> {
    char b[8];
    co_return co_await s.read(b);
  }(reader));
  EXPECT_TRUE(task) << task.error().message();
  if (task) {
    EXPECT_EQ(*task, 3u);
  }

  // Hugely negative: passed already, the read does not start.
  auto past = co_await timeout(std::chrono::hours::min(), reader.read(buffer));
  EXPECT_FALSE(past);
  if (!past) {
    EXPECT_TRUE(past.error().is_timed_out()) << past.error().message();
  }

  co_await sleep_for(milliseconds(1));  // the writers' frames finish
  EXPECT_TRUE(internal::WorkerAccess::timers(worker).empty()) << "a huge deadline left its timer behind";
  EXPECT_EQ(internal::WorkerAccess::backend(worker).in_flight(), 0u);
}

TEST_P(CancellationTest, HugeTimeoutIsNoTimeout) {
  auto [a, b] = stream_pair();
  EXPECT_TRUE(run(huge_timeout_checks(a, b)));
}

TEST_P(CancellationTest, HugeTimeoutIsNoTimeoutAsALinkedTimeout) {
  BackendOptions options;
  options.allow_linked_timeouts = true;
  create_worker(options);
  if (!worker_) return;
  auto [a, b] = stream_pair();
  EXPECT_TRUE(run(huge_timeout_checks(a, b)));
}

// Combinators that hold references to the awaitables they were given are awaited in the expression
// that makes them: `auto t = timeout(d, s.read(b)); co_await t;` (a dead operation handed to the kernel)
// must not compile. co_await cannot appear in a requires-expression, so these check what it would call.
template <typename T>
concept AwaitableAsLvalue = requires(T& t) { t.operator co_await(); } || requires(T& t) { t.await_ready(); };
template <typename T>
concept AwaitableAsRvalue = requires(T&& t) { std::move(t).operator co_await(); };
using ReadWithDeadline = decltype(timeout(milliseconds(1), std::declval<TcpStream&>().read(std::declval<MutableBuffer>())));
static_assert(AwaitableAsRvalue<ReadWithDeadline>);
static_assert(!AwaitableAsLvalue<ReadWithDeadline>, "timeout(d, io) would be awaitable from a variable");
static_assert(!std::is_copy_constructible_v<ReadWithDeadline>);
static_assert(!std::is_move_constructible_v<ReadWithDeadline>);
// when_all, when_any and timeout around a Task return Tasks, which are awaitable as rvalues only.
using ReadsWhenAll = decltype(when_all(std::declval<TcpStream&>().read(std::declval<MutableBuffer>()), sleep_for(milliseconds(1))));
using ReadsWhenAny = decltype(when_any(std::declval<TcpStream&>().read(std::declval<MutableBuffer>()), sleep_for(milliseconds(1))));
using TaskWithDeadline = decltype(timeout(milliseconds(1), std::declval<Task<Result<int>>>()));
static_assert(AwaitableAsRvalue<ReadsWhenAll> && !AwaitableAsLvalue<ReadsWhenAll>);
static_assert(AwaitableAsRvalue<ReadsWhenAny> && !AwaitableAsLvalue<ReadsWhenAny>);
static_assert(AwaitableAsRvalue<TaskWithDeadline> && !AwaitableAsLvalue<TaskWithDeadline>);
static_assert(!AwaitableAsLvalue<Task<int>>);

TEST_P(CancellationTest, TimeoutAwaitedWhereItIsMade) {
  auto [a, b] = stream_pair();
  EXPECT_TRUE(run([](TcpStream& reader, TcpStream& writer) -> Task<void> {
    char buffer[8];
    EXPECT_TRUE(co_await writer.write_all(std::string_view("abc")));
    auto n = co_await timeout(milliseconds(2000), reader.read(buffer));
    EXPECT_TRUE(n) << n.error().message();
    if (n) {
      EXPECT_EQ(*n, 3u);
    }
    auto late = co_await timeout(milliseconds(10), reader.read(buffer));
    EXPECT_FALSE(late);
    if (!late) {
      EXPECT_TRUE(late.error().is_timed_out()) << late.error().message();
    }
    // As a branch of a combinator, moved into it as an rvalue.
    EXPECT_TRUE(co_await writer.write_all(std::string_view("de")));
    auto any = co_await when_any(timeout(milliseconds(2000), reader.read(buffer)), sleep_for(std::chrono::seconds(5)));
    EXPECT_EQ(any.index, 0u);
    auto& read = std::get<0>(any.results);
    EXPECT_TRUE(read) << read.error().message();
    if (read) {
      EXPECT_EQ(*read, 2u);
    }
    EXPECT_EQ(internal::WorkerAccess::backend(*Worker::current()).in_flight(), 0u);
  }(a, b)));
}

TEST_P(CancellationTest, WhenAnyCancelsAndAwaitsTheLosers) {
  auto [a, b] = stream_pair();
  EXPECT_TRUE(run([](TcpStream& reader) -> Task<void> {
    char buffer[8];
    auto any = co_await when_any(reader.read(buffer), sleep_for(milliseconds(10)));
    EXPECT_EQ(any.index, 1u);
    auto& read = std::get<0>(any.results);
    EXPECT_FALSE(read);
    if (!read) {
      EXPECT_TRUE(read.error().is_cancelled());
    }
    EXPECT_TRUE(std::get<1>(any.results));
    EXPECT_EQ(internal::WorkerAccess::backend(*Worker::current()).in_flight(), 0u) << "a loser is still in flight";
  }(a)));
}

TEST_P(CancellationTest, WhenAllRunsConcurrently) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto value = [](int v, int ms) -> Task<int> {
      co_await sleep_for(milliseconds(ms));
      co_return v;
    };
    const auto start = Worker::Clock::now();
    auto [x, y, z] = co_await when_all(value(1, 40), value(2, 40), sleep_for(milliseconds(40)));
    EXPECT_EQ(x, 1);
    EXPECT_EQ(y, 2);
    EXPECT_TRUE(z);
    EXPECT_LT(Worker::Clock::now() - start, milliseconds(110)) << "the branches ran one after another";
  }()));
}

TEST_P(CancellationTest, CancellingTheAwaiterOfWhenAllCancelsEveryBranch) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Worker& worker = *Worker::current();
    auto both = worker.spawn([]() -> Task<int> {
      auto [first, second] = co_await when_all(sleep_for(std::chrono::hours(1)), sleep_for(std::chrono::hours(2)));
      co_return (first ? 0 : 1) + (second ? 0 : 1);
    }());
    co_await testing::settle();
    both.cancel();
    EXPECT_EQ(co_await std::move(both), 2) << "both sleeps must report cancellation";
  }()));
}

TEST_P(CancellationTest, WriteAllStopsBetweenChunksWhenCancelled) {
  auto [a, b] = stream_pair();
  EXPECT_TRUE(run([](TcpStream& writer) -> Task<void> {
    Worker& worker = *Worker::current();
    std::string big(64 << 20, 'w');  // far more than the socket buffer: write_all must wait
    auto handle = worker.spawn([](TcpStream& s, const std::string& data) -> Task<Result<void>> {
      co_return co_await s.write_all(data);
    }(writer, big));
    co_await sleep_for(milliseconds(10));
    handle.cancel();
    auto outcome = co_await std::move(handle);
    EXPECT_FALSE(outcome);
    if (!outcome) {
      EXPECT_TRUE(outcome.error().is_cancelled()) << outcome.error().message();
    }
  }(a)));
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(CancellationTest);

}  // namespace
}  // namespace surge
