// EpollBackend internals that the Backend contract test cannot see: the list of fds whose borrowed
// receive waits for a lent buffer stays bounded however often a peer makes them readable.
#include "runtime/backend/epoll/epoll_backend.h"
#include "runtime/testing/socket_pair.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <vector>

namespace surge {
namespace {

struct TestOperation : Operation {
  bool done = false;
};

void mark_done(Operation& operation) noexcept { static_cast<TestOperation&>(operation).done = true; }

TestOperation borrowed_recv(int fd) {
  TestOperation operation;
  operation.opcode = OpCode::kRecvBorrowed;
  operation.fd = fd;
  operation.owned_fd = true;
  operation.complete = &mark_done;
  return operation;
}

using testing::SocketPair;

// Polls until `operation` has completed, for at most a second.
bool poll_until_done(EpollBackend& backend, const TestOperation& operation) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (!operation.done && std::chrono::steady_clock::now() < deadline) {
    backend.poll(std::chrono::milliseconds(10));
  }
  return operation.done;
}

class EpollStarvationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto made = EpollBackend::create({.lent_buffers = 2, .lent_buffer_size = 64});
    ASSERT_TRUE(made) << made.error().message();
    backend_ = std::move(*made);
  }

  // Borrows every lent buffer through receives on `fd` (whose peer is `peer`) and returns their ids.
  std::vector<std::uint32_t> borrow_all(int fd, int peer) {
    std::vector<std::uint32_t> held;
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(write(peer, "b", 1), 1);
      TestOperation recv = borrowed_recv(fd);
      backend_->submit(recv);
      EXPECT_TRUE(poll_until_done(*backend_, recv));
      EXPECT_EQ(recv.result, 1);
      held.push_back(recv.buffer_id);
    }
    return held;
  }

  std::unique_ptr<EpollBackend> backend_;
};

// A hostile peer sends many small segments while every buffer is held: each one is a new EPOLLIN edge
// and a retry that finds no buffer, but the fd is listed once.
TEST_F(EpollStarvationTest, StarvedFdIsListedOnceHoweverOftenItIsRetried) {
  SocketPair pair;
  const std::vector<std::uint32_t> held = borrow_all(pair.fds[0], pair.fds[1]);
  const std::uint64_t exhausted_before = backend_->counters().lent_buffers_exhausted;
  TestOperation starved = borrowed_recv(pair.fds[0]);
  backend_->submit(starved);
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(write(pair.fds[1], "x", 1), 1);
    backend_->poll(std::chrono::nanoseconds::zero());
  }
  EXPECT_FALSE(starved.done);
  EXPECT_GT(backend_->counters().lent_buffers_exhausted - exhausted_before, 100u) << "the test did not retry";
  EXPECT_EQ(backend_->starved_fd_entries_for_testing(), 1u);

  // A buffer coming back serves the waiting receive, and the fd leaves the list.
  backend_->release_buffer(held[0]);
  ASSERT_TRUE(poll_until_done(*backend_, starved));
  EXPECT_GT(starved.result, 0);
  EXPECT_EQ(backend_->starved_fd_entries_for_testing(), 0u);
  backend_->release_buffer(starved.buffer_id);
  backend_->release_buffer(held[1]);
  EXPECT_EQ(backend_->in_flight(), 0u);
}

// Several starved fds are listed once each; one that is forgotten (its socket closes) leaves the list,
// so a later fd with the same number is not listed twice.
TEST_F(EpollStarvationTest, ForgottenFdLeavesTheStarvedList) {
  SocketPair first;
  SocketPair second;
  const std::vector<std::uint32_t> held = borrow_all(first.fds[0], first.fds[1]);
  TestOperation a = borrowed_recv(first.fds[0]);
  TestOperation b = borrowed_recv(second.fds[0]);
  backend_->submit(a);
  backend_->submit(b);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(write(first.fds[1], "x", 1), 1);
    ASSERT_EQ(write(second.fds[1], "y", 1), 1);
    backend_->poll(std::chrono::nanoseconds::zero());
  }
  EXPECT_EQ(backend_->starved_fd_entries_for_testing(), 2u);
  backend_->forget_fd(second.fds[0]);
  ASSERT_TRUE(poll_until_done(*backend_, b));
  EXPECT_EQ(b.result, -ECANCELED);
  EXPECT_EQ(backend_->starved_fd_entries_for_testing(), 1u);
  backend_->release_buffer(held[0]);
  ASSERT_TRUE(poll_until_done(*backend_, a));
  EXPECT_GT(a.result, 0);
  EXPECT_EQ(backend_->starved_fd_entries_for_testing(), 0u);
  backend_->release_buffer(a.buffer_id);
  backend_->release_buffer(held[1]);
  EXPECT_EQ(backend_->in_flight(), 0u);
}

}  // namespace
}  // namespace surge
