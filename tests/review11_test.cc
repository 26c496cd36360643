// review11: reproductions for the review of a4baf91..7db5f8e (sync/, WakeList, serve, ctrl_c, submit_to,
// Sharded, TaskGroup).
//
// Each test named Defect<N>_* fails on 7db5f8e (or makes ASan/TSan report); the comment above it says
// what goes wrong and what should happen instead. Every test is bounded in time.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runtime/join_handle.h"
#include "runtime/runtime.h"
#include "runtime/submit_to.h"
#include "runtime/task.h"
#include "runtime/testing/backend_param.h"
#include "runtime/time.h"
#include "runtime/when.h"
#include "runtime/worker.h"
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
using testing::run_bounded;
using testing::settle;

std::unique_ptr<Worker> make_worker() {
  auto worker = Worker::create({.backend = BackendChoice::kEpoll});
  if (!worker) return nullptr;
  return std::move(*worker);
}

// ---------------------------------------------------------------------------------------------------
// Defect 1 (ASan: heap-use-after-free in WakeList::drain, wake_list.h, reached from ~Worker).
// WaitAwaiter::abandon() (then sync/internal/waiter.h, now runtime/internal/waiter.h) only took the waiter off its worker's WakeList when
// the state is kGranted. A waiter woken from another thread with kClosed (channel close, last Sender or
// OneshotSender or WatchSender dropped) is listed there too; if its frame is destroyed before the drain
// runs (its worker shuts down), the node stays listed inside the freed frame, and the next drain (the
// second shutdown() in ~Worker, or the next turn of a worker that was shutdown() and reused) reads and
// schedules it. Expected: abandon() unlists the waiter whatever the outcome it was woken with.
//
// Deterministic set-up: task B waits in rx.recv(); task A (spawned after B, so destroyed first by
// shutdown) owns the last Sender and, when destroyed, lets another thread drop it (as a task on another
// worker of a Runtime does when all workers shut down at once).
struct DropOnAnotherThread {
  std::optional<Sender<int>> tx;
  ~DropOnAnotherThread() {
    std::thread([moved = std::move(tx)]() mutable { moved.reset(); }).join();
  }
};

Task<void> wait_for_message(Receiver<int> rx) {
  auto message = co_await rx.recv();
  (void)message;
}

Task<void> hold_last_sender(Sender<int> tx) {
  DropOnAnotherThread holder{std::move(tx)};
  co_await sleep_for(1h);
}

TEST(Review11, Defect1_ClosedWaiterStaysOnWakeListWhenItsFrameIsDestroyed) {
  auto worker = make_worker();
  ASSERT_NE(worker, nullptr);
  auto [tx, rx] = channel<int>(4);
  (void)worker->spawn(wait_for_message(std::move(rx)));
  (void)worker->spawn(hold_last_sender(std::move(tx)));
  ASSERT_TRUE(run_bounded(*worker, settle(), 5s));
  ASSERT_EQ(worker->live_tasks(), 2u);
  // shutdown(): A is destroyed first (the Sender is dropped on another thread: B is woken kClosed and
  // listed on this worker's WakeList), then B, whose node is left listed. The worker stays usable:
  worker->shutdown();
  // ... and its next turn drains the WakeList: it resumes B's destroyed frame.
  bool ran = run_bounded(*worker, []() -> Task<void> { co_return; }(), 5s);
  EXPECT_TRUE(ran);
  worker.reset();
}

// ---------------------------------------------------------------------------------------------------
// Defect 2: a Semaphore stays marked "waiters" with nobody waiting, after an acquire() whose task was
// already cancelled. WaitAwaiter::await_suspend calls try_complete_locked() first, which sets kWaiters
// (semaphore.h, AcquireAwaiter::try_complete_locked), and only then notices the cancellation and returns
// without queueing. Nothing clears kWaiters again (serve_locked clears it only when it serves the last
// waiter), so from then on try_acquire() fails and acquire() queues although every permit is free.
// Expected: the semaphore is as before the cancelled acquire(): try_acquire() succeeds.
Task<void> acquire_once(Semaphore& semaphore, bool& cancelled) {
  auto permit = co_await semaphore.acquire();
  cancelled = !permit && permit.error().is_cancelled();
}

TEST(Review11, Defect2_PreCancelledAcquireLeavesSemaphoreWedged) {
  auto worker = make_worker();
  ASSERT_NE(worker, nullptr);
  EXPECT_TRUE(run_bounded(*worker, []() -> Task<void> {
    Semaphore semaphore(1);
    bool cancelled = false;
    {
      auto held = semaphore.try_acquire();
      EXPECT_TRUE(held.has_value());
      auto task = Worker::current()->spawn(acquire_once(semaphore, cancelled));
      task.cancel();  // before it first runs: its acquire() finds the cancellation already requested
      co_await std::move(task);
    }  // the permit goes back
    EXPECT_TRUE(cancelled);
    EXPECT_EQ(semaphore.available_permits(), 1u);
    EXPECT_TRUE(semaphore.try_acquire().has_value()) << "one free permit, nobody waiting, yet try_acquire fails";
    auto permit = co_await timeout(200ms, semaphore.acquire());
    EXPECT_TRUE(permit.ok()) << "acquire() with a free permit and no waiter: " << permit.error().message();
  }(), 5s));
}

// ---------------------------------------------------------------------------------------------------
// Defects 3 and 4 (a message type whose move throws: the ring's grow() destroyed messages twice, and a
// receive that threw lost its message) are now refused at compile time: channel and oneshot messages must
// be nothrow move constructible (static_assert in sync/channel.h and sync/oneshot.h), so the tests that
// showed them no longer compile and are gone.

// ---------------------------------------------------------------------------------------------------
// Defect 5 (TSan: data race / heap-use-after-free on the WaitGroup's SpinLock; ASan when the timing
// lines up). WaitGroup::done() (sync/wait_group.h) drops the count and only then calls
// waiters_.wake_all(), which takes the WaitGroup's lock. A task whose wait() finds the count already zero
// (await_ready) returns at once and may destroy the WaitGroup (the usual "add, hand out, wait, return"),
// while the thread of the last done() is still about to lock (or unlock) inside it. GatePass::leave()
// has the same shape (fetch_sub, then wake_all on the Gate). Expected: once the count is seen at zero,
// done() no longer touches the object (or wait() waits until done() has let go of it).
TEST(Review11, Defect5_LastDoneTouchesWaitGroupAfterWaiterMayDestroyIt) {
  auto worker = make_worker();
  ASSERT_NE(worker, nullptr);
  std::atomic<WaitGroup*> handed{nullptr};
  std::atomic<bool> stop{false};
  std::thread job([&] {
    while (!stop.load(std::memory_order_acquire)) {
      WaitGroup* group = handed.exchange(nullptr, std::memory_order_acq_rel);
      if (group != nullptr) group->done();  // the job's last act
    }
  });
  EXPECT_TRUE(run_bounded(*worker, [](std::atomic<WaitGroup*>& handed) -> Task<void> {
    for (int i = 0; i < 20000; ++i) {
      auto group = std::make_unique<WaitGroup>();
      group->add(1);
      handed.store(group.get(), std::memory_order_release);
      while (group->count() != 0) {
      }  // other work meanwhile
      auto waited = co_await group->wait();  // zero already: does not suspend
      EXPECT_TRUE(waited.ok());
      group.reset();  // the waiter is done with it
    }
  }(handed), 20s));
  stop.store(true, std::memory_order_release);
  job.join();
}

// ---------------------------------------------------------------------------------------------------
// Defect 6 (ASan: heap-use-after-free in the submitted task, on the target worker). submit_to
// (runtime/submit_to.h, internal::submitted_task) promises that the callable's arguments are "copied or
// moved", but when the callable returns a Task it is invoked on the sending thread with the arguments
// forwarded as they were passed: a coroutine that takes a parameter by const reference (the ordinary
// way to take a std::string) stores a reference to the caller's temporary, which is destroyed at the end
// of the submit_to expression, before the task runs on the target worker. (A plain callable is fine:
// call_plain takes copies.) Expected: the arguments are decayed copies kept in the task (or such a
// signature is rejected at compile time, like a capturing lambda is).
TEST(Review11, Defect6_SubmitToTaskCallableKeepsReferenceToDeadArgument) {
  auto worker = make_worker();
  ASSERT_NE(worker, nullptr);
  auto handle = submit_to(
      *worker, [](const std::string& text) -> Task<std::size_t> { co_return text.find('y'); },
      std::string(200, 'x') + "y");  // the temporary dies here, before the task runs
  std::size_t found = 0;
  EXPECT_TRUE(run_bounded(*worker, [](JoinHandle<std::size_t> handle, std::size_t& found) -> Task<void> {
    found = co_await std::move(handle);
  }(std::move(handle), found), 5s));
  EXPECT_EQ(found, 200u);
}

}  // namespace
}  // namespace surge
