// //sync across the workers of a Runtime, on both backends: hand-offs between threads (order, mutual
// exclusion, permits), wake-ups from threads that are not workers, and shutdown while tasks wait on every
// primitive (nothing hangs; ASan: nothing leaks or is touched after free).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "runtime/runtime.h"
#include "runtime/testing/backend_param.h"
#include "runtime/time.h"
#include "runtime/when.h"
#include "sync/channel.h"
#include "sync/mutex.h"
#include "sync/notify.h"
#include "sync/oneshot.h"
#include "sync/semaphore.h"
#include "sync/wait_group.h"
#include "sync/watch.h"

namespace surge {
namespace {

using namespace std::chrono_literals;

class SyncAcrossWorkersTest : public ::testing::TestWithParam<BackendChoice> {
 protected:
  void SetUp() override {
    std::unique_ptr<Backend> probe;  // skip cleanly where io_uring is unavailable
    testing::make_backend_or_skip(GetParam(), {}, probe);
    if (!probe) return;
    probe.reset();
    auto runtime = Runtime::create({.workers = 2, .worker = {.backend = GetParam()}});
    ASSERT_TRUE(runtime) << runtime.error().message();
    runtime_ = std::move(*runtime);
  }

  // block_on with a bound: a hang fails the test instead of timing out CI.
  template <typename T>
  T run(Task<T> task, std::chrono::seconds limit = 20s) {
    std::atomic<bool> done{false};
    std::thread watchdog([&] {
      const auto until = std::chrono::steady_clock::now() + limit;
      while (!done.load() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
      if (!done.load()) {
        ADD_FAILURE() << "test task did not finish within " << limit.count() << " s";
        std::abort();
      }
    });
    struct Finish {
      std::atomic<bool>& done;
      std::thread& watchdog;
      ~Finish() {
        done = true;
        watchdog.join();
      }
    } finish{done, watchdog};
    return runtime_->block_on(std::move(task));
  }

  std::unique_ptr<Runtime> runtime_;
};

TEST_P(SyncAcrossWorkersTest, ChannelBetweenWorkersKeepsOrderUnderBackpressure) {
  constexpr int kMessages = 20'000;
  auto [tx, rx] = channel<int>(16);
  auto producer = runtime_->spawn_on(0, [](Sender<int> tx) -> Task<bool> {
    for (int i = 0; i < kMessages; ++i) {
      if (!(co_await tx.send(int{i})).ok()) co_return false;
    }
    co_return true;
  }(std::move(tx)));
  auto consumer = runtime_->spawn_on(1, [](Receiver<int> rx) -> Task<int> {
    int expected = 0;
    for (;;) {
      auto value = co_await rx.recv();
      if (!value) co_return value.error().code() == EPIPE ? expected : -1;
      if (*value != expected) co_return -2;
      ++expected;
    }
  }(std::move(rx)));
  const auto [sent, received] = run([](JoinHandle<bool> p, JoinHandle<int> c) -> Task<std::pair<bool, int>> {
    const bool sent = co_await std::move(p);
    const int received = co_await std::move(c);
    co_return std::pair(sent, received);
  }(std::move(producer), std::move(consumer)));
  EXPECT_TRUE(sent);
  EXPECT_EQ(received, kMessages);
}

TEST_P(SyncAcrossWorkersTest, MutexExcludesAcrossWorkers) {
  constexpr int kTasks = 4;
  constexpr int kRounds = 2'000;
  Mutex mutex;
  long counter = 0;      // guarded by mutex, deliberately not atomic: TSan checks the hand-over
  int inside = 0;
  std::vector<JoinHandle<bool>> tasks;
  for (int t = 0; t < kTasks; ++t) {
    tasks.push_back(runtime_->spawn_on(t % 2, [](Mutex& mutex, long& counter, int& inside, int t) -> Task<bool> {
      for (int i = 0; i < kRounds; ++i) {
        auto guard = co_await mutex.lock();
        if (!guard || inside++ != 0) co_return false;
        ++counter;
        if ((i + t) % 7 == 0) co_await yield();  // hold it across a suspension now and then
        --inside;
      }
      co_return true;
    }(mutex, counter, inside, t)));
  }
  const bool all = run([](std::vector<JoinHandle<bool>> tasks) -> Task<bool> {
    bool all = true;
    for (auto& task : tasks) all = (co_await std::move(task)) && all;
    co_return all;
  }(std::move(tasks)));
  EXPECT_TRUE(all);
  EXPECT_EQ(counter, long{kTasks} * kRounds);
  EXPECT_FALSE(mutex.is_locked());
}

TEST_P(SyncAcrossWorkersTest, SemaphoreBoundsConcurrencyAcrossWorkers) {
  Semaphore semaphore(2);
  std::atomic<int> in_use{0};
  std::atomic<int> most{0};
  std::vector<JoinHandle<void>> tasks;
  for (int t = 0; t < 8; ++t) {
    tasks.push_back(runtime_->spawn_on(t % 2, [](Semaphore& s, std::atomic<int>& in_use, std::atomic<int>& most) -> Task<void> {
      for (int i = 0; i < 200; ++i) {
        auto permit = co_await s.acquire();
        EXPECT_TRUE(permit.ok());
        const int now = in_use.fetch_add(1) + 1;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        co_await yield();
        in_use.fetch_sub(1);
      }
    }(semaphore, in_use, most)));
  }
  run([](std::vector<JoinHandle<void>> tasks) -> Task<void> {
    for (auto& task : tasks) co_await std::move(task);
  }(std::move(tasks)));
  EXPECT_LE(most.load(), 2);
  EXPECT_EQ(semaphore.available_permits(), 2u);
}

TEST_P(SyncAcrossWorkersTest, ThreadsThatAreNotWorkersWakeWaitingTasks) {
  Notify notify;
  auto [tx, rx] = channel<int>(4);
  auto waiter = runtime_->spawn_on(1, [](Notify& notify, Receiver<int> rx) -> Task<int> {
    if (!(co_await notify.wait()).ok()) co_return -1;
    auto value = co_await rx.recv();
    co_return value.ok() ? *value : -2;
  }(notify, std::move(rx)));
  std::thread outsider([&notify, tx = std::move(tx)]() mutable {
    std::this_thread::sleep_for(20ms);  // let the task park first
    notify.notify_one();
    std::this_thread::sleep_for(5ms);
    EXPECT_TRUE(tx.try_send(77).ok());
  });
  const int value = run([](JoinHandle<int> waiter) -> Task<int> { co_return co_await std::move(waiter); }(std::move(waiter)));
  outsider.join();
  EXPECT_EQ(value, 77);
}

TEST_P(SyncAcrossWorkersTest, RequestsWithOneshotRepliesAcrossWorkers) {
  struct Request {
    int question;
    OneshotSender<int> reply;
  };
  auto [tx, rx] = channel<Request>(8);
  auto server = runtime_->spawn_on(1, [](Receiver<Request> rx) -> Task<void> {
    for (;;) {
      auto request = co_await rx.recv();
      if (!request) co_return;
      (void)std::move(request->reply).send(request->question * 2);
    }
  }(std::move(rx)));
  const int total = run([](Sender<Request> tx) -> Task<int> {
    int total = 0;
    for (int i = 1; i <= 100; ++i) {
      auto [reply_tx, reply_rx] = oneshot<int>();
      // Built in a variable, not in the co_await expression: gcc 12 mishandles an aggregate temporary
      // there (README, "A gcc 12 caveat").
      Request request{i, std::move(reply_tx)};
      if (!(co_await tx.send(std::move(request))).ok()) co_return -1;
      auto reply = co_await reply_rx.recv();
      if (!reply) co_return -2;
      total += *reply;
    }
    co_return total;
  }(std::move(tx)));
  EXPECT_EQ(total, 100 * 101);
  run([](JoinHandle<void> server) -> Task<void> { co_await std::move(server); }(std::move(server)));
}

TEST_P(SyncAcrossWorkersTest, WatchAcrossWorkersEndsWithTheLastValue) {
  auto [tx, rx] = watch<int>(0);
  std::vector<JoinHandle<int>> readers;
  for (int r = 0; r < 4; ++r) {
    readers.push_back(runtime_->spawn_on(r % 2, [](WatchReceiver<int> rx) -> Task<int> {
      int last = rx.get();
      while ((co_await rx.changed()).ok()) last = rx.get();
      co_return last;
    }(rx)));
  }
  { auto unused = std::move(rx); }
  run([](WatchSender<int> tx) -> Task<void> {
    for (int i = 1; i <= 500; ++i) {
      tx.send(int{i});
      if (i % 50 == 0) (void)co_await sleep_for(1ms);
    }
  }(std::move(tx)));  // the sender is dropped at the end: readers see EPIPE after the last value
  const std::vector<int> last = run([](std::vector<JoinHandle<int>> readers) -> Task<std::vector<int>> {
    std::vector<int> last;
    for (auto& reader : readers) last.push_back(co_await std::move(reader));
    co_return last;
  }(std::move(readers)));
  for (int value : last) EXPECT_EQ(value, 500);
}

TEST_P(SyncAcrossWorkersTest, ShutdownWhileTasksWaitOnEveryPrimitive) {
  // Declared before the tasks that wait on them and destroyed after the shutdown that destroys those.
  Mutex mutex;
  auto held = mutex.try_lock();
  Semaphore semaphore(0);
  Notify notify;
  WaitGroup group;
  group.add(1);
  Gate gate;
  auto pass = gate.enter();
  auto [full_tx, full_rx] = channel<std::string>(1);
  EXPECT_TRUE(full_tx.try_send("fills it").ok());
  auto [empty_tx, empty_rx] = channel<std::string>(1);
  auto [reply_tx, reply_rx] = oneshot<std::string>();
  auto [watch_tx, watch_rx] = watch<int>(0);
  std::vector<JoinHandle<void>> waiting;
  for (std::size_t w = 0; w < 2; ++w) {
    waiting.push_back(runtime_->spawn_on(w, [](Mutex& m) -> Task<void> { (void)co_await m.lock(); }(mutex)));
    waiting.push_back(runtime_->spawn_on(w, [](Semaphore& s) -> Task<void> { (void)co_await s.acquire(); }(semaphore)));
    waiting.push_back(runtime_->spawn_on(w, [](Notify& n) -> Task<void> { (void)co_await n.wait(); }(notify)));
    waiting.push_back(runtime_->spawn_on(w, [](WaitGroup& g) -> Task<void> { (void)co_await g.wait(); }(group)));
    waiting.push_back(runtime_->spawn_on(w, [](Gate& g) -> Task<void> { (void)co_await g.close(); }(gate)));
    waiting.push_back(runtime_->spawn_on(w, [](Sender<std::string> tx) -> Task<void> {
      (void)co_await tx.send(std::string(100, 'x'));  // heap-allocated: ASan sees a leak or a double free
    }(full_tx)));
    waiting.push_back(runtime_->spawn_on(w, [](Receiver<std::string> rx) -> Task<void> {
      (void)co_await rx.recv();
    }(empty_rx)));
    waiting.push_back(runtime_->spawn_on(w, [](WatchReceiver<int> rx) -> Task<void> { (void)co_await rx.changed(); }(watch_rx)));
  }
  waiting.push_back(runtime_->spawn_on(1, [](OneshotReceiver<std::string> rx) -> Task<void> {
    (void)co_await rx.recv();
  }(std::move(reply_rx))));
  std::this_thread::sleep_for(50ms);  // let them all park
  for (auto& task : waiting) EXPECT_FALSE(task.is_finished());
  runtime_->shutdown();
  for (auto& task : waiting) EXPECT_TRUE(task.is_abandoned());
  // Every primitive is still consistent and usable from outside.
  EXPECT_TRUE(mutex.is_locked());
  held->unlock();
  EXPECT_TRUE(mutex.try_lock().has_value());
  semaphore.add_permits(1);
  EXPECT_TRUE(semaphore.try_acquire().has_value());
  EXPECT_EQ(full_rx.try_recv().value(), "fills it");
  EXPECT_TRUE(std::move(reply_tx).send("nobody").ok() == false);  // the receiver was destroyed with its task
}

TEST_P(SyncAcrossWorkersTest, WhatWasHandedToATaskDestroyedBeforeItRanIsGivenBack) {
  // A standalone worker whose tasks wait; another thread grants them (unlock, a message, permits) while the
  // worker is not running; then the worker shuts down without resuming them. The grants come back.
  runtime_.reset();
  auto created = Worker::create({.backend = GetParam()});
  ASSERT_TRUE(created);
  std::unique_ptr<Worker> worker = std::move(*created);
  Mutex mutex;
  auto held = mutex.try_lock();
  Semaphore semaphore(0);
  Notify notify;
  auto [tx, rx] = channel<int>(4);
  std::vector<JoinHandle<void>> waiting;
  waiting.push_back(worker->spawn([](Mutex& m) -> Task<void> { (void)co_await m.lock(); }(mutex)));
  waiting.push_back(worker->spawn([](Semaphore& s) -> Task<void> { (void)co_await s.acquire(2); }(semaphore)));
  waiting.push_back(worker->spawn([](Notify& n) -> Task<void> { (void)co_await n.wait(); }(notify)));
  waiting.push_back(worker->spawn([](Receiver<int>& rx) -> Task<void> { (void)co_await rx.recv(); }(rx)));
  worker->block_on([]() -> Task<void> { co_await testing::settle(); }());
  for (auto& task : waiting) ASSERT_FALSE(task.is_finished());
  std::thread granter([&] {
    held->unlock();            // handed to the waiting lock()
    semaphore.add_permits(2);  // handed to the waiting acquire(2)
    notify.notify_one();       // handed to the waiting wait()
    EXPECT_TRUE(tx.try_send(5).ok());  // handed to the waiting recv()
  });
  granter.join();
  worker->shutdown();  // destroys the tasks before they could resume
  for (auto& task : waiting) EXPECT_TRUE(task.is_abandoned());
  EXPECT_FALSE(mutex.is_locked());
  EXPECT_EQ(semaphore.available_permits(), 2u);
  EXPECT_EQ(rx.try_recv().value(), 5);
  // The notification was passed on: stored as the permit for the next wait().
  worker->block_on([](Notify& n) -> Task<void> {
    auto waited = co_await timeout(1s, n.wait());
    EXPECT_TRUE(waited.ok());
  }(notify));
}

TEST_P(SyncAcrossWorkersTest, NotifyAllToATaskDestroyedBeforeItRanStoresNoPermit) {
  runtime_.reset();
  auto created = Worker::create({.backend = GetParam()});
  ASSERT_TRUE(created);
  std::unique_ptr<Worker> worker = std::move(*created);
  Notify notify;
  auto waiting = worker->spawn([](Notify& n) -> Task<void> { (void)co_await n.wait(); }(notify));
  worker->block_on([]() -> Task<void> { co_await testing::settle(); }());
  std::thread([&] { notify.notify_all(); }).join();
  worker->shutdown();
  EXPECT_TRUE(waiting.is_abandoned());
  worker->block_on([](Notify& n) -> Task<void> {
    auto waited = co_await timeout(20ms, n.wait());
    EXPECT_TRUE(!waited.ok() && waited.error().is_timed_out()) << "notify_all() left a permit behind";
  }(notify));
}

INSTANTIATE_TEST_SUITE_P(Backends, SyncAcrossWorkersTest,
                         ::testing::Values(BackendChoice::kIoUring, BackendChoice::kEpoll),
                         testing::backend_test_name);

}  // namespace
}  // namespace surge
