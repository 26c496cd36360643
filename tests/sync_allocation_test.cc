// No allocation per message on the steady path of a bounded channel, and none per lock/unlock or
// acquire/release (issue 11), on one worker and across two, on both backends. A counting operator new
// (runtime/testing:allocation_counter) counts every allocation in the process while the measured loop
// runs; warm-up rounds first let the channel's ring grow to its size.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>

#include "runtime/runtime.h"
#include "runtime/testing/allocation_counter.h"
#include "runtime/testing/backend_param.h"
#include "sync/channel.h"
#include "sync/mutex.h"
#include "sync/semaphore.h"

namespace surge {
namespace {

class SyncAllocationTest : public testing::BackendTest {};

TEST_P(SyncAllocationTest, OneWorkerSendRecvLockAndAcquireAllocateNothing) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto [tx, rx] = channel<std::uint64_t>(64);
    Mutex mutex;
    Semaphore semaphore(4);
    // Counted inside the rounds: the round's own Task frame is not the steady path.
    auto round = [&](int count) -> Task<std::uint64_t> {
      const auto before = testing::allocation_count();
      for (int i = 0; i < count; ++i) {
        for (int j = 0; j < 48; ++j) EXPECT_TRUE((co_await tx.send(std::uint64_t(j))).ok());
        for (int j = 0; j < 48; ++j) EXPECT_TRUE((co_await rx.recv()).ok());
        auto guard = co_await mutex.lock();
        auto permit = co_await semaphore.acquire(2);
      }
      co_return testing::allocation_count() - before;
    };
    EXPECT_GT(co_await round(4), 0u);  // warm-up: the ring grows to 64 (which shows the counter counts)
    EXPECT_EQ(co_await round(200), 0u);
  }()));
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(SyncAllocationTest);

// Across two workers every hand-over wakes a task on the other worker (the wake list, the inbox, MSG_RING
// or an eventfd write): none of it allocates either.
TEST(SyncAllocationAcrossWorkersTest, CrossWorkerChannelAndMutexAllocateNothing) {
  for (BackendChoice choice : {BackendChoice::kIoUring, BackendChoice::kEpoll}) {
    std::unique_ptr<Backend> probe;
    testing::make_backend_or_skip(choice, {}, probe);
    if (!probe) continue;
    probe.reset();
    auto runtime = Runtime::create({.workers = 2, .worker = {.backend = choice}});
    ASSERT_TRUE(runtime) << runtime.error().message();
    auto [tx, rx] = channel<std::uint64_t>(16);
    Mutex mutex;
    auto exchange = [&](std::uint64_t count) {
      auto producer = (*runtime)->spawn_on(0, [](Sender<std::uint64_t>& tx, Mutex& mutex, std::uint64_t count) -> Task<void> {
        for (std::uint64_t i = 0; i < count; ++i) {
          EXPECT_TRUE((co_await tx.send(std::uint64_t{i})).ok());
          auto guard = co_await mutex.lock();
        }
      }(tx, mutex, count));
      auto consumer = (*runtime)->spawn_on(1, [](Receiver<std::uint64_t>& rx, Mutex& mutex, std::uint64_t count) -> Task<void> {
        for (std::uint64_t i = 0; i < count; ++i) {
          EXPECT_TRUE((co_await rx.recv()).ok());
          auto guard = co_await mutex.lock();
        }
      }(rx, mutex, count));
      (*runtime)->block_on([](JoinHandle<void> p, JoinHandle<void> c) -> Task<void> {
        co_await std::move(p);
        co_await std::move(c);
      }(std::move(producer), std::move(consumer)));
    };
    exchange(1'000);  // warm-up
    // Counted on the workers' threads only, from inside the tasks: spawn and block_on allocate their
    // task frames, which is not the steady path.
    std::atomic<std::uint64_t> allocated{0};
    auto producer = (*runtime)->spawn_on(0, [](Sender<std::uint64_t>& tx, Mutex& mutex, std::atomic<std::uint64_t>& allocated) -> Task<void> {
      const auto before = testing::thread_allocation_count();
      for (std::uint64_t i = 0; i < 5'000; ++i) {
        EXPECT_TRUE((co_await tx.send(std::uint64_t{i})).ok());
        auto guard = co_await mutex.lock();
      }
      allocated += testing::thread_allocation_count() - before;
    }(tx, mutex, allocated));
    auto consumer = (*runtime)->spawn_on(1, [](Receiver<std::uint64_t>& rx, Mutex& mutex, std::atomic<std::uint64_t>& allocated) -> Task<void> {
      const auto before = testing::thread_allocation_count();
      for (std::uint64_t i = 0; i < 5'000; ++i) {
        EXPECT_TRUE((co_await rx.recv()).ok());
        auto guard = co_await mutex.lock();
      }
      allocated += testing::thread_allocation_count() - before;
    }(rx, mutex, allocated));
    (*runtime)->block_on([](JoinHandle<void> p, JoinHandle<void> c) -> Task<void> {
      co_await std::move(p);
      co_await std::move(c);
    }(std::move(producer), std::move(consumer)));
    EXPECT_EQ(allocated.load(), 0u) << backend_choice_name(choice);
    (*runtime)->shutdown();
  }
}

}  // namespace
}  // namespace surge
