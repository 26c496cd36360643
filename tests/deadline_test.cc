// Deadlines that must hold, on every backend and with either kind of deadline (the worker's timer wheel,
// io_uring's linked timeouts): across the chunks of read_exact and write_all, on borrowed reads that wait
// without an SQE of their own, on operations io_uring resubmits after EAGAIN, and with a submission queue
// too small for an operation and its timeout. Also: how many bytes a read_exact or write_all moved before
// it failed, timed out or was cancelled.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "net/tcp_stream.h"
#include "runtime/fd_io.h"
#include "runtime/time.h"
#include "runtime/when.h"
#include "runtime/testing/backend_param.h"
#include "net/testing/stream_pair.h"

namespace surge {
namespace {

using std::chrono::milliseconds;

// The backend, and whether deadlines become io_uring linked timeouts (epoll has none: the wheel then).
using DeadlineParam = std::tuple<BackendChoice, bool>;

class DeadlineTest : public ::testing::TestWithParam<DeadlineParam> {
 protected:
  void SetUp() override { create_worker({}); }

  void create_worker(BackendOptions options) {
    worker_.reset();
    options.allow_linked_timeouts = std::get<1>(GetParam());
    std::unique_ptr<Backend> backend;
    testing::make_backend_or_skip(std::get<0>(GetParam()), options, backend);
    if (backend) worker_ = Worker::with_backend(std::move(backend));
  }

  bool run(Task<void> task, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    return testing::run_bounded(*worker_, std::move(task), limit);
  }

  std::unique_ptr<Worker> worker_;
};

std::string deadline_test_name(const ::testing::TestParamInfo<DeadlineParam>& info) {
  std::string name = std::get<0>(info.param) == BackendChoice::kIoUring ? "IoUring" : "Epoll";
  return name + (std::get<1>(info.param) ? "LinkedTimeouts" : "Wheel");
}

INSTANTIATE_TEST_SUITE_P(Backends, DeadlineTest,
                         ::testing::Values(DeadlineParam{BackendChoice::kIoUring, false},
                                           DeadlineParam{BackendChoice::kIoUring, true},
                                           DeadlineParam{BackendChoice::kEpoll, false}),
                         deadline_test_name);

// Writes into `stream` until cancelled (or an error): a peer that never lets a reader run dry.
Task<void> write_forever(TcpStream& stream) {
  std::vector<char> chunk(64 * 1024, 'x');
  for (;;) {
    auto sent = co_await stream.write(chunk);
    if (!sent) co_return;
  }
}

// Reads from `stream` until cancelled (or the end): a peer that never lets a writer block for long.
Task<void> read_forever(TcpStream& stream) {
  std::vector<char> chunk(64 * 1024);
  for (;;) {
    auto n = co_await stream.read(chunk);
    if (!n || *n == 0) co_return;
  }
}

// The chunks complete at once (the peer keeps the socket full), so the deadline mostly fires while a
// chunk has completed and not been delivered yet: it must still end the whole operation. With a budget
// of one completion per poll, the peer's completion and the chunk's compete for it.
TEST_P(DeadlineTest, ReadExactDeadlineHoldsAcrossChunks) {
  create_worker({.max_completions_per_poll = 1});
  auto [reader, writer] = testing::stream_pair(*worker_);
  EXPECT_TRUE(run([](TcpStream& reader, TcpStream& writer) -> Task<void> {
    auto peer = Worker::current()->spawn(write_forever(writer));
    // Far more than the peer can send within the deadline: only the deadline ends this read.
    const std::size_t size = 256u << 20;
    std::unique_ptr<char[]> buffer(new char[size]);  // uninitialised: only the pages written are touched
    const auto started = Worker::Clock::now();
    auto got = co_await timeout(milliseconds(20), reader.read_exact({buffer.get(), size}));
    const auto took = Worker::Clock::now() - started;
    peer.cancel();
    co_await std::move(peer);
    EXPECT_FALSE(got) << "read_exact filled 256 MiB: the deadline was lost between chunks";
    if (!got) {
      EXPECT_TRUE(got.error().is_timed_out()) << got.error().message();
    }
    EXPECT_LT(got.transferred(), size);
    EXPECT_LT(took, std::chrono::seconds(2));
  }(reader, writer)));
}

TEST_P(DeadlineTest, WriteAllDeadlineHoldsAcrossChunks) {
  create_worker({.max_completions_per_poll = 1});
  auto [writer, reader] = testing::stream_pair(*worker_);
  EXPECT_TRUE(run([](TcpStream& writer, TcpStream& reader) -> Task<void> {
    auto peer = Worker::current()->spawn(read_forever(reader));
    const std::size_t size = 256u << 20;
    std::unique_ptr<char[]> buffer(new char[size]);  // contents do not matter; untouched pages stay unmapped
    auto sent = co_await timeout(milliseconds(20), writer.write_all({buffer.get(), size}));
    peer.cancel();
    co_await std::move(peer);
    EXPECT_FALSE(sent) << "write_all sent 256 MiB: the deadline was lost between chunks";
    if (!sent) {
      EXPECT_TRUE(sent.error().is_timed_out()) << sent.error().message();
    }
    EXPECT_LT(sent.transferred(), size);
  }(writer, reader)));
}

// Several streams at once, so completions queue behind the budget while deadlines fire.
TEST_P(DeadlineTest, ManyReadExactsAllStopAtTheirDeadlines) {
  create_worker({.max_completions_per_poll = 2});
  std::vector<std::pair<TcpStream, TcpStream>> pairs;
  for (int i = 0; i < 4; ++i) pairs.push_back(testing::stream_pair(*worker_));
  EXPECT_TRUE(run([](std::vector<std::pair<TcpStream, TcpStream>>& pairs) -> Task<void> {
    Worker& worker = *Worker::current();
    std::vector<JoinHandle<void>> peers;
    std::vector<JoinHandle<TransferResult>> readers;
    for (auto& [reader, writer] : pairs) {
      peers.push_back(worker.spawn(write_forever(writer)));
      readers.push_back(worker.spawn([](TcpStream& s) -> Task<TransferResult> {
        const std::size_t size = 256u << 20;
        std::unique_ptr<char[]> buffer(new char[size]);
        co_return co_await timeout(milliseconds(30), s.read_exact({buffer.get(), size}));
      }(reader)));
    }
    for (auto& handle : readers) {
      auto got = co_await std::move(handle);
      EXPECT_FALSE(got);
      if (!got) {
        EXPECT_TRUE(got.error().is_timed_out()) << got.error().message();
      }
    }
    for (auto& peer : peers) {
      peer.cancel();
      co_await std::move(peer);
    }
  }(pairs)));
}

// A borrowed read waits for its stream's multishot request (io_uring) or a lent buffer without an SQE
// of its own, so a linked timeout would have nothing to link to: its deadline must hold anyway.
TEST_P(DeadlineTest, ReadBorrowedHonoursItsDeadline) {
  for (bool buffer_ring : {true, false}) {
    SCOPED_TRACE(buffer_ring ? "buffer ring" : "pool");
    create_worker({.allow_buffer_ring = buffer_ring});
    auto [reader, writer] = testing::stream_pair(*worker_);
    EXPECT_TRUE(run(
        [](TcpStream& reader) -> Task<void> {
          const auto started = Worker::Clock::now();
          auto chunk = co_await timeout(milliseconds(30), reader.read_borrowed());
          EXPECT_FALSE(chunk);
          if (!chunk) {
            EXPECT_TRUE(chunk.error().is_timed_out()) << chunk.error().message();
          }
          EXPECT_GE(Worker::Clock::now() - started, milliseconds(30));
        }(reader),
        std::chrono::seconds(3)));
  }
}

// A borrowed read whose pool buffer is all lent out waits for one to come back; its deadline holds there
// too.
TEST_P(DeadlineTest, ReadBorrowedWaitingForABufferHonoursItsDeadline) {
  create_worker({.lent_buffers = 1, .allow_buffer_ring = false});
  auto [reader, writer] = testing::stream_pair(*worker_);
  auto [reader2, writer2] = testing::stream_pair(*worker_);
  EXPECT_TRUE(run(
      [](TcpStream& reader, TcpStream& writer, TcpStream& reader2, TcpStream& writer2) -> Task<void> {
        EXPECT_TRUE(co_await writer.write_all(std::string_view("a")));
        EXPECT_TRUE(co_await writer2.write_all(std::string_view("b")));
        auto held = co_await reader.read_borrowed();  // the only buffer
        EXPECT_TRUE(held);
        auto chunk = co_await timeout(milliseconds(30), reader2.read_borrowed());
        EXPECT_FALSE(chunk);
        if (!chunk) {
          EXPECT_TRUE(chunk.error().is_timed_out()) << chunk.error().message();
        }
        held->release();
        auto later = co_await timeout(milliseconds(1000), reader2.read_borrowed());
        EXPECT_TRUE(later) << later.error().message();
        if (later) {
          EXPECT_EQ(later->size(), 1u);
        }
      }(reader, writer, reader2, writer2),
      std::chrono::seconds(3)));
}

// io_uring answers EAGAIN for a non-blocking pipe and the backend waits for readiness itself: that wait
// must carry the deadline too.
TEST_P(DeadlineTest, ReadOnAnEmptyNonBlockingPipeHonoursItsDeadline) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  EXPECT_TRUE(run(
      [](int read_end) -> Task<void> {
        char byte;
        auto n = co_await timeout(milliseconds(30), read_fd(*Worker::current(), read_end, &byte, 1));
        EXPECT_FALSE(n);
        if (!n) {
          EXPECT_TRUE(n.error().is_timed_out()) << n.error().message();
        }
      }(fds[0]),
      std::chrono::seconds(3)));
  forget_fd(*worker_, fds[0]);
  close(fds[0]);
  close(fds[1]);
}

// The same for an eventfd, which io_uring answers with EAGAIN when it is empty and non-blocking.
TEST_P(DeadlineTest, ReadOnAnEmptyNonBlockingEventfdHonoursItsDeadline) {
  const int event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(event_fd, 0);
  EXPECT_TRUE(run(
      [](int fd) -> Task<void> {
        std::uint64_t count = 0;
        auto n = co_await timeout(milliseconds(30), read_fd(*Worker::current(), fd, &count, sizeof(count)));
        EXPECT_FALSE(n);
        if (!n) {
          EXPECT_TRUE(n.error().is_timed_out()) << n.error().message();
        }
      }(event_fd),
      std::chrono::seconds(3)));
  forget_fd(*worker_, event_fd);
  close(event_fd);
}

// A submission queue with room for two entries: every operation and its linked timeout must still reach
// the kernel together, or an operation would wait without its deadline.
TEST_P(DeadlineTest, DeadlinesHoldWithATinySubmissionQueue) {
  create_worker({.submission_queue_entries = 2});
  std::vector<std::pair<TcpStream, TcpStream>> pairs;
  for (int i = 0; i < 16; ++i) pairs.push_back(testing::stream_pair(*worker_));
  EXPECT_TRUE(run(
      [](std::vector<std::pair<TcpStream, TcpStream>>& pairs) -> Task<void> {
        Worker& worker = *Worker::current();
        std::vector<JoinHandle<Result<std::size_t>>> reads;
        for (auto& pair : pairs) {
          reads.push_back(worker.spawn([](TcpStream& s) -> Task<Result<std::size_t>> {
            char buffer[16];
            co_return co_await timeout(milliseconds(30), s.read(buffer));
          }(pair.first)));
        }
        for (auto& handle : reads) {
          auto n = co_await std::move(handle);
          EXPECT_FALSE(n);
          if (!n) {
            EXPECT_TRUE(n.error().is_timed_out()) << n.error().message();
          }
        }
      }(pairs),
      std::chrono::seconds(5)));
}

// A read with a deadline whose stream is closed under it (a cancellation the caller did not ask for)
// ends with ECANCELED, never ETIMEDOUT: with linked timeouts the two once looked alike.
TEST_P(DeadlineTest, ClosingTheStreamIsNotReportedAsATimeout) {
  auto [reader, writer] = testing::stream_pair(*worker_);
  EXPECT_TRUE(run([](TcpStream& reader) -> Task<void> {
    Worker& worker = *Worker::current();
    auto handle = worker.spawn([](TcpStream& s) -> Task<Result<std::size_t>> {
      char buffer[16];
      co_return co_await timeout(std::chrono::seconds(5), s.read(buffer));
    }(reader));
    for (int i = 0; i < 5; ++i) co_await yield();  // the read waits in the backend
    const auto started = Worker::Clock::now();
    EXPECT_TRUE(reader.close());
    auto n = co_await std::move(handle);
    EXPECT_FALSE(n);
    if (!n) {
      EXPECT_TRUE(n.error().is_cancelled()) << n.error().message();
    }
    EXPECT_LT(Worker::Clock::now() - started, std::chrono::seconds(2));
  }(reader)));
}

TEST_P(DeadlineTest, ReadExactReportsTheBytesThatArrivedBeforeTheEnd) {
  auto [reader, writer] = testing::stream_pair(*worker_);
  EXPECT_TRUE(run([](TcpStream& reader, TcpStream& writer) -> Task<void> {
    EXPECT_TRUE(co_await writer.write_all(std::string_view("1234")));
    EXPECT_TRUE(writer.shutdown(Shutdown::kWrite));
    char buffer[10];
    auto got = co_await reader.read_exact(buffer);
    EXPECT_FALSE(got);
    if (!got) {
      EXPECT_TRUE(got.error().is_unexpected_eof()) << got.error().message();
    }
    EXPECT_EQ(got.transferred(), 4u);
  }(reader, writer)));
}

TEST_P(DeadlineTest, ReadExactReportsTheBytesThatArrivedBeforeItsDeadline) {
  auto [reader, writer] = testing::stream_pair(*worker_);
  EXPECT_TRUE(run([](TcpStream& reader, TcpStream& writer) -> Task<void> {
    EXPECT_TRUE(co_await writer.write_all(std::string_view("123456")));
    char buffer[10];
    auto got = co_await timeout(milliseconds(20), reader.read_exact(buffer));
    EXPECT_FALSE(got);
    if (!got) {
      EXPECT_TRUE(got.error().is_timed_out()) << got.error().message();
    }
    EXPECT_EQ(got.transferred(), 6u);
    // The framing can go on: the rest of the message completes the buffer.
    EXPECT_TRUE(co_await writer.write_all(std::string_view("7890")));
    auto rest = co_await reader.read_exact({buffer + got.transferred(), sizeof(buffer) - got.transferred()});
    EXPECT_TRUE(rest);
    EXPECT_EQ(std::string(buffer, sizeof(buffer)), "1234567890");
  }(reader, writer)));
}

TEST_P(DeadlineTest, CancelledWriteAllReportsTheBytesSent) {
  auto [writer, reader] = testing::stream_pair(*worker_);
  EXPECT_TRUE(run([](TcpStream& writer, TcpStream& reader) -> Task<void> {
    Worker& worker = *Worker::current();
    auto big = std::make_shared<std::vector<char>>(8u << 20, 'z');
    auto handle = worker.spawn([](TcpStream& s, std::shared_ptr<std::vector<char>> data) -> Task<TransferResult> {
      co_return co_await s.write_all(*data);
    }(writer, big));
    co_await sleep_for(milliseconds(10));  // the socket buffer fills; the peer reads nothing
    handle.cancel();
    auto sent = co_await std::move(handle);
    EXPECT_FALSE(sent);
    if (!sent) {
      EXPECT_TRUE(sent.error().is_cancelled()) << sent.error().message();
    }
    EXPECT_GT(sent.transferred(), 0u);
    EXPECT_LT(sent.transferred(), big->size());
    // Exactly that many bytes reached the peer.
    EXPECT_TRUE(writer.shutdown(Shutdown::kWrite));
    std::size_t received = 0;
    std::vector<char> chunk(1 << 16);
    for (;;) {
      auto n = co_await reader.read(chunk);
      EXPECT_TRUE(n);
      if (!n || *n == 0) break;
      received += *n;
    }
    EXPECT_EQ(received, sent.transferred());
  }(writer, reader)));
}

}  // namespace
}  // namespace surge
