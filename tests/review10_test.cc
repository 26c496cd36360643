// review10: reproductions for the review of d6ec846..092c95b (tiers, WorkerAccess, packed Operation and
// IoAwaitable, spawn in one allocation, FixedFileTable, absl flags).
//
// Each test named *Defect* failed on 092c95b (or made ASan/TSan report) and passes since the fix that
// followed the review; the others pin down behaviour that held. Every test is bounded in time.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "net/socket_address.h"
#include "net/tcp_stream.h"
#include "net/testing/stream_pair.h"
#include "runtime/join_handle.h"
#include "runtime/runtime.h"
#include "runtime/task.h"
#include "runtime/testing/backend_param.h"
#include "runtime/time.h"
#include "runtime/when.h"
#include "runtime/worker.h"

namespace surge {
namespace {

using std::chrono::milliseconds;
using testing::BackendTest;

std::unique_ptr<Worker> make_worker(BackendChoice choice = BackendChoice::kEpoll) {
  auto worker = Worker::create({.backend = choice});
  if (!worker) return nullptr;
  return std::move(*worker);
}

// ---------------------------------------------------------------------------------------------------
// 1. Spawn paths.

Task<int> sleep_then(milliseconds delay, int value) {
  co_await sleep_for(delay);
  co_return value;
}

// A coroutine awaiting a JoinHandle it does not own (the handle lives in the caller, as it does for any
// helper taking `JoinHandle<T>&`).
Task<int> await_by_reference(JoinHandle<int>* handle) { co_return co_await std::move(*handle); }

// DEFECT (ASan: heap-use-after-free in TaskStateBase::mark_finished, worker.h).
// A coroutine X on worker W1 awaits a handle of a task Y on another worker W2; the handle lives outside
// X's frame. W1 gives up (block_on_for's limit -> shutdown()) and destroys X's frame, JoinWaiter and
// all. Nothing unregisters the waiter from Y's header (root_.waiter still holds the address of the
// JoinWaiter inside X's dead frame), so when Y returns, mark_finished() reads waiter->worker and writes
// waiter->run in freed memory, and then pushes the dead node into W1's inbox.
TEST(Review10Spawn, DefectWaiterFrameDestroyedWhileRegisteredIsUsedAfterFree) {
  auto runtime = Runtime::create({.workers = 1, .worker = {.backend = BackendChoice::kEpoll}});
  ASSERT_TRUE(runtime);
  auto w1 = make_worker();
  ASSERT_NE(w1, nullptr);
  JoinHandle<int> handle = (*runtime)->spawn(sleep_then(milliseconds(100), 7));
  // X registers as the waiter, then W1 gives up on it after 20 ms and destroys its frame.
  EXPECT_FALSE(w1->block_on_for(await_by_reference(&handle), milliseconds(20)).has_value());
  // Y returns on the runtime's worker: it wakes the dead waiter.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!handle.is_finished() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(milliseconds(5));
  EXPECT_TRUE(handle.is_finished());
  // The dead JoinWaiter was pushed into W1's inbox: W1's next turn runs it (schedule() of a destroyed
  // coroutine), which is where a non-ASan build crashes or resumes garbage.
  (*runtime)->shutdown();
  EXPECT_EQ(handle.take_result(), 7);
}

// DEFECT (ASan: heap-use-after-free in Worker::run_posted_work, worker.cc:129), with the handle inside the
// waiter's frame, i.e. the ordinary `co_await std::move(handle)`. The kDetached exchange (1efa0c8) covers
// a handle dropped before the task finishes, not one dropped after the task has *posted* the waiter: Y
// finishes on W2 while W1 is in shutdown() (after its last inbox drain, before it destroys X's frame),
// mark_finished() pushes X's JoinWaiter (in X's frame) into W1's inbox, then W1 destroys X's frame. The
// inbox now links freed memory; W1's next turn, or ~Worker's shutdown(), runs it.
// Deterministic: a task D on W1, destroyed by the shutdown before X (roots are destroyed newest first),
// holds a local whose destructor waits for Y to have finished.
struct WaitInDestructor {
  JoinHandle<int>* handle;
  ~WaitInDestructor() {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!handle->is_finished() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  }
};
TEST(Review10Spawn, DefectJoinWaiterPostedIntoAFrameThatShutdownDestroys) {
  // W2 is created on, and runs on, a thread of its own (a worker's owner is the thread that made it).
  std::promise<Worker*> made;
  std::thread w2_thread([&made] {
    auto own = make_worker();
    made.set_value(own.get());
    if (own) own->run_until_stopped();
  });
  Worker* w2 = made.get_future().get();
  ASSERT_NE(w2, nullptr);
  auto w1 = make_worker();
  ASSERT_NE(w1, nullptr);
  auto outcome = w1->block_on_for([](Worker* other) -> Task<int> {
    JoinHandle<int> handle = other->spawn(sleep_then(milliseconds(100), 7));  // Y, on W2
    // D: adopted after X, so destroyed first by W1's shutdown.
    (void)Worker::current()->spawn([](JoinHandle<int>* h) -> Task<void> {
      WaitInDestructor wait{h};
      co_await sleep_for(std::chrono::hours(1));
    }(&handle));
    co_return co_await std::move(handle);  // X registers as Y's waiter
  }(w2), milliseconds(20));
  EXPECT_FALSE(outcome.has_value());
  // W1's inbox holds the JoinWaiter of X's destroyed frame: this turn runs it.
  (void)w1->block_on([]() -> Task<int> { co_return 0; }());
  w2->request_stop();
  w2_thread.join();
}

// DEFECT (hang). A waiter parked on a task that its worker then abandons (a Runtime shutting down while a
// task on another worker - here a standalone one - waits for it) is never woken: shutdown() only flags
// abandoned_ and destroys the frame; nothing looks at root_.waiter. Worse, it cannot even be cancelled
// out of the wait: cancelling the waiter runs request_cancel(), which returns at once for an abandoned
// task, so even surge::timeout() around the wait never returns (its branch waits for ever).
TEST(Review10Spawn, DefectWaiterOfAbandonedTaskIsNeverWokenNorCancellable) {
  auto runtime = Runtime::create({.workers = 1, .worker = {.backend = BackendChoice::kEpoll}});
  ASSERT_TRUE(runtime);
  auto w1 = make_worker();
  ASSERT_NE(w1, nullptr);
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(50));
    (*runtime)->shutdown();
  });
  auto outcome = w1->block_on_for(
      [](Runtime* rt) -> Task<std::string> {
        JoinHandle<int> handle = rt->spawn(sleep_then(std::chrono::hours(1), 1));
        // The wait is bounded: 200 ms. The runtime shuts down after 50 ms.
        auto waited = co_await timeout(milliseconds(200), [](JoinHandle<int>& h) -> Task<Result<int>> {
          try {
            co_return co_await std::move(h);
          } catch (const std::future_error& error) {  // broken_promise: its worker destroyed the task
            EXPECT_EQ(error.code(), std::future_errc::broken_promise);
            co_return Error(ECANCELED, "abandoned");
          }
        }(handle));
        co_return handle.is_abandoned() ? "abandoned" : (waited ? "value" : "timed out");
      }(runtime->get()),
      milliseconds(1500));
  stopper.join();
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(*outcome, "abandoned");
  ASSERT_TRUE(outcome.has_value()) << "a task waiting (with a 200 ms timeout) for a task its worker "
                                      "abandoned was never resumed: neither the abandon nor the timeout's "
                                      "cancellation reached it";
}

// Held: a JoinHandle dropped, cancelled or awaited from other threads while its task finishes, across
// Runtime workers and foreign threads, with shutdown racing the end. Randomised; the seed is printed.
// Run under TSan/ASan.
TEST(Review10Spawn, RandomisedCrossThreadHandleStress) {
  const unsigned seed = std::random_device{}();
  std::printf("RandomisedCrossThreadHandleStress seed=%u\n", seed);
  std::mt19937 random(seed);
  for (int round = 0; round < 6; ++round) {
    auto runtime = Runtime::create({.workers = 2, .worker = {.backend = round % 2 ? BackendChoice::kEpoll : BackendChoice::kAuto}});
    ASSERT_TRUE(runtime);
    Runtime* rt = runtime->get();
    std::vector<std::thread> threads;
    std::atomic<int> values{0};
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([rt, t, seed = random(), &values] {
        std::mt19937 r(seed);
        for (int i = 0; i < 200; ++i) {
          auto body = [](int v, int yields, bool throws) -> Task<int> {
            for (int y = 0; y < yields; ++y) co_await yield();
            if (throws) throw std::runtime_error("boom");
            co_return v;
          };
          JoinHandle<int> h = rt->spawn_on(r() % 2, body(i, static_cast<int>(r() % 3), r() % 17 == 0));
          switch (r() % 4) {
            case 0:
              break;  // dropped at once: detached
            case 1:
              h.cancel();
              break;
            case 2: {
              // awaited from the other worker
              JoinHandle<int> waiter = rt->spawn_on(r() % 2, [](JoinHandle<int> inner) -> Task<int> {
                try {
                  co_return co_await std::move(inner);
                } catch (const std::runtime_error&) {
                  co_return -1;
                }
              }(std::move(h)));
              if (r() % 2) waiter.cancel();
              break;
            }
            case 3: {
              for (int spin = 0; spin < 1000 && !h.is_finished() && !h.is_abandoned(); ++spin) std::this_thread::yield();
              if (h.is_finished()) {
                try {
                  values += h.take_result() >= 0;
                } catch (const std::runtime_error&) {
                }
              }
              break;
            }
          }
          (void)t;
        }
      });
    }
    // Sometimes shut down while the threads still spawn (refused spawns, abandoned tasks).
    if (random() % 2) std::this_thread::sleep_for(milliseconds(random() % 5));
    if (random() % 2) rt->shutdown();
    for (auto& thread : threads) thread.join();
    runtime->reset();
  }
}

// Held: an exception thrown from a spawned task reaches the awaiter, on its own and another worker.
TEST(Review10Spawn, ExceptionFromSpawnedTaskReachesAwaiterAcrossWorkers) {
  auto runtime = Runtime::create({.workers = 2, .worker = {.backend = BackendChoice::kEpoll}});
  ASSERT_TRUE(runtime);
  Runtime* rt = runtime->get();
  std::string what = rt->block_on([](Runtime* r) -> Task<std::string> {
    JoinHandle<int> h = r->spawn_on(1, []() -> Task<int> {
      co_await yield();
      throw std::runtime_error("thrown on worker 1");
    }());
    try {
      (void)co_await std::move(h);
    } catch (const std::runtime_error& error) {
      co_return error.what();
    }
    co_return "nothing";
  }(rt));
  EXPECT_EQ(what, "thrown on worker 1");
}

// Held: when_all / when_any over JoinHandles (the loser is cancelled through the waiter's slot).
TEST(Review10Spawn, WhenAnyOverJoinHandlesCancelsTheLoser) {
  auto worker = make_worker();
  ASSERT_NE(worker, nullptr);
  auto result = worker->block_on_for([]() -> Task<int> {
    auto slow = Worker::current()->spawn([]() -> Task<Result<int>> {
      co_await sleep_for(std::chrono::hours(1));
      co_return Error(ECANCELED, "slow");
    }());
    auto fast = Worker::current()->spawn([]() -> Task<Result<int>> { co_return 5; }());
    auto any = co_await when_any(std::move(slow), std::move(fast));
    auto all = co_await when_all(Worker::current()->spawn(sleep_then(milliseconds(1), 1)),
                                 Worker::current()->spawn(sleep_then(milliseconds(2), 2)));
    co_return static_cast<int>(any.index) * 100 + std::get<0>(all) + std::get<1>(all);
  }(), std::chrono::seconds(2));
  ASSERT_TRUE(result.has_value()) << "when_any over a never-ending spawned task did not cancel it";
  EXPECT_EQ(*result, 103);
}

// Held: a Task<T> with a large result (just under the 64 KiB limit) awaited and spawned.
struct Big {
  unsigned char bytes[60000];
};
TEST(Review10Spawn, LargeResultSpawnedAndAwaited) {
  auto worker = make_worker();
  ASSERT_NE(worker, nullptr);
  auto make = [](unsigned char fill) -> Task<Big> {
    Big big;
    std::fill(std::begin(big.bytes), std::end(big.bytes), fill);
    co_return big;
  };
  Big out = worker->block_on([](auto make) -> Task<Big> {
    Big a = co_await make(1);
    auto handle = Worker::current()->spawn(make(2));
    Big b = co_await std::move(handle);
    a.bytes[59999] = b.bytes[59999];
    co_return a;
  }(make));
  EXPECT_EQ(out.bytes[0], 1);
  EXPECT_EQ(out.bytes[59999], 2);
}

// Held: a 16-aligned result (the largest alignment task_state.h allows).
struct alignas(16) Aligned16 {
  long double value;
};
TEST(Review10Spawn, SixteenAlignedResult) {
  auto worker = make_worker();
  ASSERT_NE(worker, nullptr);
  auto value = worker->block_on([]() -> Task<Aligned16> {
    auto h = Worker::current()->spawn([]() -> Task<Aligned16> { co_return Aligned16{2.5L}; }());
    Aligned16 got = co_await std::move(h);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&got) % 16, 0u);
    co_return got;
  }());
  EXPECT_EQ(value.value, 2.5L);
}

// DEFECT (documented behaviour violated): live_tasks() is "Spawned tasks that have not finished yet",
// but a task spawned from another thread is not counted until the worker's loop adopts it, so a worker
// with one pending task reports 0 (and a block_on-free worker never counts it).
TEST(Review10Spawn, DefectLiveTasksMissesTasksSpawnedFromAnotherThread) {
  auto worker = make_worker();
  ASSERT_NE(worker, nullptr);
  std::optional<JoinHandle<int>> handle;
  std::thread([&] { handle.emplace(worker->spawn(sleep_then(milliseconds(1), 3))); }).join();
  EXPECT_EQ(worker->live_tasks(), 1u) << "a spawned, unfinished task is not counted";
  EXPECT_EQ(worker->block_on([](JoinHandle<int>* h) -> Task<int> { co_return co_await std::move(*h); }(&*handle)), 3);
  EXPECT_EQ(worker->live_tasks(), 0u);
}

// Held: cancel from a foreign thread before the task was adopted reaches the task when it starts.
TEST(Review10Spawn, CancelBeforeAdoptionFromForeignThread) {
  auto worker = make_worker();
  ASSERT_NE(worker, nullptr);
  std::optional<JoinHandle<Result<void>>> handle;
  std::thread([&] {
    handle.emplace(worker->spawn([]() -> Task<Result<void>> { co_return co_await sleep_for(std::chrono::hours(1)); }()));
    handle->cancel();
  }).join();
  auto done = worker->block_on_for([](JoinHandle<Result<void>>* h) -> Task<bool> {
    auto r = co_await std::move(*h);
    co_return !r && r.error().is_cancelled();
  }(&*handle), std::chrono::seconds(2));
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(*done);
}

// ---------------------------------------------------------------------------------------------------
// 2. Deadlines on the packed IoAwaitable, both backends.

class Review10Deadline : public BackendTest {};

TEST_P(Review10Deadline, DeadlineAtTimePointMaxNeverFires) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto [left, right] = testing::stream_pair(*Worker::current());
    (void)Worker::current()->spawn([](TcpStream& s) -> Task<void> {
      co_await sleep_for(milliseconds(30));
      (void)co_await s.write_all(std::string_view("x"));
      co_await sleep_for(milliseconds(30));
      (void)co_await s.write_all(std::string_view("y"));
    }(right));
    char byte = 0;
    auto read = left.read({reinterpret_cast<std::byte*>(&byte), 1});
    read.set_deadline(Worker::Clock::time_point::max());
    auto n = co_await read;
    EXPECT_TRUE(n) << n.error().message();
    EXPECT_EQ(byte, 'x');
    auto n2 = co_await timeout(std::chrono::hours::max(), left.read({reinterpret_cast<std::byte*>(&byte), 1}));
    EXPECT_TRUE(n2) << n2.error().message();
    EXPECT_EQ(byte, 'y');
  }()));
}

TEST_P(Review10Deadline, DeadlineAlreadyPassedIsTimedOutNotStarted) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto [left, right] = testing::stream_pair(*Worker::current());
    char byte = 0;
    auto read = left.read({reinterpret_cast<std::byte*>(&byte), 1});
    read.set_deadline(Worker::Clock::now() - milliseconds(1));
    auto n = co_await read;
    EXPECT_FALSE(n);
    if (!n) EXPECT_EQ(n.error().code(), ETIMEDOUT) << n.error().message();
    read.set_deadline(Worker::Clock::time_point::min());
    auto r2 = left.read({reinterpret_cast<std::byte*>(&byte), 1});
    r2.set_deadline(Worker::Clock::time_point::min());
    auto n2 = co_await r2;
    EXPECT_FALSE(n2);
    if (!n2) EXPECT_EQ(n2.error().code(), ETIMEDOUT);
  }()));
}

TEST_P(Review10Deadline, DeadlineInFiftyMillisecondsTimesOut) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto [left, right] = testing::stream_pair(*Worker::current());
    char byte = 0;
    const auto start = Worker::Clock::now();
    auto n = co_await timeout(milliseconds(50), left.read({reinterpret_cast<std::byte*>(&byte), 1}));
    EXPECT_FALSE(n);
    if (!n) EXPECT_EQ(n.error().code(), ETIMEDOUT);
    EXPECT_GE(Worker::Clock::now() - start, milliseconds(50));
  }()));
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(Review10Deadline);

// ---------------------------------------------------------------------------------------------------
// 3. Worker's "any thread" surface.

// DEFECT (TSan: data race in IoUringBackend::features()). worker.h promises features() "from any thread
// once the worker exists"; IoUringBackend::features() (7274477) now computes uses_buffer_ring from
// buffer_ring_ and use_buffer_ring_, which the worker writes when it sets the lent buffers up on the
// first borrowed read (multishot_recv.cc). A monitoring thread calling features() races with that.
TEST(Review10AnyThread, DefectFeaturesFromAnotherThreadRacesWithLazyBufferRingSetUp) {
  auto created = Worker::create({.backend = BackendChoice::kIoUring});
  if (!created) GTEST_SKIP() << created.error().message();
  Worker& worker = **created;
  std::atomic<bool> stop{false};
  std::atomic<int> observed{0};
  std::thread monitor([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      observed += worker.features().uses_buffer_ring ? 1 : 0;
      (void)worker.counters();
    }
  });
  std::this_thread::sleep_for(milliseconds(5));
  auto done = worker.block_on_for([]() -> Task<bool> {
    auto [left, right] = testing::stream_pair(*Worker::current());
    (void)co_await right.write_all(std::string_view("hello"));
    auto chunk = co_await left.read_borrowed();  // first borrowed read: the buffer ring is set up now
    co_return chunk && chunk->size() > 0;
  }(), std::chrono::seconds(5));
  stop = true;
  monitor.join();
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(*done);
}

}  // namespace
}  // namespace surge
