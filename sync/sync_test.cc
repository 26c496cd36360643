// Tests of //sync on one worker, on both backends: each primitive's contract, cancellation at each await
// (queued: leaves with nothing; granted: keeps what it got), timeouts, closing, and bad use.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

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
using testing::settle;

class SyncTest : public testing::BackendTest {};

// --- Mutex ---

Task<void> lock_and_record(Mutex& mutex, std::vector<int>& order, int id) {
  auto guard = co_await mutex.lock();
  EXPECT_TRUE(guard.ok());
  order.push_back(id);
  co_await yield();  // hold it across a suspension
}

TEST_P(SyncTest, MutexHandsItselfOverInTheOrderTasksAsked) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Mutex mutex;
    std::vector<int> order;
    auto first = mutex.try_lock();
    EXPECT_TRUE(first.has_value());
    EXPECT_FALSE(mutex.try_lock().has_value());
    std::vector<JoinHandle<void>> tasks;
    for (int i = 0; i < 5; ++i) tasks.push_back(Worker::current()->spawn(lock_and_record(mutex, order, i)));
    co_await settle();
    EXPECT_TRUE(order.empty());
    first->unlock();
    for (auto& task : tasks) co_await std::move(task);
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_FALSE(mutex.is_locked());
  }()));
}

TEST_P(SyncTest, CancelledLockLeavesTheQueueHoldingNothing) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Mutex mutex;
    auto held = mutex.try_lock();
    bool cancelled = false;
    auto waiter = Worker::current()->spawn([](Mutex& m, bool& cancelled) -> Task<void> {
      auto guard = co_await m.lock();
      cancelled = !guard && guard.error().is_cancelled();
    }(mutex, cancelled));
    std::vector<int> order;
    auto behind = Worker::current()->spawn(lock_and_record(mutex, order, 7));
    co_await settle();
    waiter.cancel();
    co_await std::move(waiter);
    EXPECT_TRUE(cancelled);
    held->unlock();  // goes to the one behind, not to the cancelled one
    co_await std::move(behind);
    EXPECT_EQ(order, std::vector<int>{7});
    EXPECT_FALSE(mutex.is_locked());
  }()));
}

TEST_P(SyncTest, LockTimesOutWithETIMEDOUTAndTheMutexStaysUsable) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Mutex mutex;
    auto held = mutex.try_lock();
    auto late = co_await timeout(20ms, mutex.lock());
    EXPECT_FALSE(late.ok());
    if (!late.ok()) {
      EXPECT_TRUE(late.error().is_timed_out()) << late.error().message();
    }
    held->unlock();
    EXPECT_FALSE(mutex.is_locked());
    auto again = co_await mutex.lock();
    EXPECT_TRUE(again.ok());
  }()));
}

TEST_P(SyncTest, LockThatWasHandedTheMutexKeepsItWhenCancelledAfterwards) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Mutex mutex;
    auto held = mutex.try_lock();
    bool got = false;
    auto waiter = Worker::current()->spawn([](Mutex& m, bool& got) -> Task<void> {
      auto guard = co_await m.lock();
      got = guard.ok();
    }(mutex, got));
    co_await settle();
    held->unlock();   // handed over: the waiter is scheduled with the lock
    waiter.cancel();  // too late: the real result wins
    co_await std::move(waiter);
    EXPECT_TRUE(got);
    EXPECT_FALSE(mutex.is_locked());
  }()));
}

TEST_P(SyncTest, LockWhenAlreadyCancelledFailsAtOnceIfTheMutexIsHeld) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Mutex mutex;
    auto held = mutex.try_lock();
    auto handle = Worker::current()->spawn([](Mutex& m) -> Task<bool> {
      co_await yield();
      auto guard = co_await m.lock();
      co_return !guard && guard.error().is_cancelled();
    }(mutex));
    handle.cancel();
    EXPECT_TRUE(co_await std::move(handle));
  }()));
}

// --- Semaphore ---

TEST_P(SyncTest, SemaphoreServesALargeRequestBeforeLaterSmallOnes) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Semaphore semaphore(3);
    auto two = co_await semaphore.acquire(2);
    if (!(two.ok())) { ADD_FAILURE() << "two.ok()"; co_return; }
    std::vector<int> order;
    auto big = Worker::current()->spawn([](Semaphore& s, std::vector<int>& order) -> Task<void> {
      auto permits = co_await s.acquire(3);
      EXPECT_TRUE(permits.ok());
      order.push_back(3);
    }(semaphore, order));
    co_await settle();
    // One permit is free, but the oldest waiter wants three: a new small request must not overtake it.
    EXPECT_FALSE(semaphore.try_acquire(1).has_value());
    auto small = Worker::current()->spawn([](Semaphore& s, std::vector<int>& order) -> Task<void> {
      auto permits = co_await s.acquire(1);
      EXPECT_TRUE(permits.ok());
      order.push_back(1);
    }(semaphore, order));
    co_await settle();
    EXPECT_TRUE(order.empty());
    two->release();
    co_await std::move(big);
    co_await std::move(small);
    EXPECT_EQ(order, (std::vector<int>{3, 1}));
    EXPECT_EQ(semaphore.available_permits(), 3u);
  }()));
}

TEST_P(SyncTest, CancellingTheHeadWaiterLetsTheSmallerOnesBehindItThrough) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Semaphore semaphore(1);
    auto big = Worker::current()->spawn([](Semaphore& s) -> Task<bool> {
      auto permits = co_await s.acquire(5);
      co_return !permits && permits.error().is_cancelled();
    }(semaphore));
    co_await settle();
    auto small = Worker::current()->spawn([](Semaphore& s) -> Task<bool> {
      auto permits = co_await s.acquire(1);
      co_return permits.ok();
    }(semaphore));
    co_await settle();
    EXPECT_FALSE(small.is_finished());
    big.cancel();
    EXPECT_TRUE(co_await std::move(big));
    EXPECT_TRUE(co_await std::move(small));
    EXPECT_EQ(semaphore.available_permits(), 1u);
  }()));
}

TEST_P(SyncTest, SemaphoreTimeoutAndForget) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Semaphore semaphore(1);
    auto permit = semaphore.try_acquire();
    if (!(permit.has_value())) { ADD_FAILURE() << "permit.has_value()"; co_return; }
    auto late = co_await timeout(10ms, semaphore.acquire());
    EXPECT_TRUE(!late.ok() && late.error().is_timed_out());
    permit->forget();
    EXPECT_EQ(semaphore.available_permits(), 0u);
    semaphore.add_permits(2);
    auto two = co_await semaphore.acquire(2);
    EXPECT_TRUE(two.ok());
    EXPECT_EQ(two->count(), 2u);
  }()));
}

// --- Notify ---

TEST_P(SyncTest, NotifyStoresOnePermitAndNotifyAllWakesEveryWaiter) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Notify notify;
    notify.notify_one();
    notify.notify_one();  // permits do not add up
    EXPECT_TRUE((co_await notify.wait()).ok());
    auto second = co_await timeout(10ms, notify.wait());
    EXPECT_TRUE(!second.ok() && second.error().is_timed_out());

    int woken = 0;
    std::vector<JoinHandle<void>> waiters;
    for (int i = 0; i < 3; ++i) {
      waiters.push_back(Worker::current()->spawn([](Notify& n, int& woken) -> Task<void> {
        if ((co_await n.wait()).ok()) ++woken;
      }(notify, woken)));
    }
    co_await settle();
    notify.notify_all();
    for (auto& waiter : waiters) co_await std::move(waiter);
    EXPECT_EQ(woken, 3);
    // notify_all stored nothing.
    auto after = co_await timeout(10ms, notify.wait());
    EXPECT_FALSE(after.ok());
  }()));
}

// --- WaitGroup and Gate ---

TEST_P(SyncTest, WaitGroupWaitsForEveryDone) {
  EXPECT_TRUE(run([]() -> Task<void> {
    WaitGroup group;
    EXPECT_TRUE((co_await group.wait()).ok());  // zero: at once
    group.add(3);
    int finished = 0;
    for (int i = 0; i < 3; ++i) {
      (void)Worker::current()->spawn([](WaitGroup& g, int& finished, int delay) -> Task<void> {
        (void)co_await sleep_for(std::chrono::milliseconds(delay));
        ++finished;
        g.done();
      }(group, finished, i * 5));
    }
    EXPECT_TRUE((co_await group.wait()).ok());
    EXPECT_EQ(finished, 3);
  }()));
}

TEST_P(SyncTest, GateRefusesEntryOnceClosingAndCloseWaitsForEveryPass) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Gate gate;
    auto pass = gate.enter();
    if (!(pass.ok())) { ADD_FAILURE() << "pass.ok()"; co_return; }
    auto closer = Worker::current()->spawn([](Gate& g) -> Task<bool> { co_return (co_await g.close()).ok(); }(gate));
    co_await settle();
    EXPECT_TRUE(gate.is_closed());
    EXPECT_FALSE(closer.is_finished());
    auto refused = gate.enter();
    EXPECT_TRUE(!refused.ok() && refused.error().code() == ESHUTDOWN);
    pass->leave();
    EXPECT_TRUE(co_await std::move(closer));
    EXPECT_EQ(gate.inside(), 0u);
  }()));
}

TEST_P(SyncTest, GateCloseCanBeCancelled) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Gate gate;
    auto pass = gate.enter();
    auto closed = co_await timeout(10ms, gate.close());
    EXPECT_TRUE(!closed.ok() && closed.error().is_timed_out());
    EXPECT_TRUE(gate.is_closed());
  }()));
}

// --- Channel ---

TEST_P(SyncTest, BoundedChannelKeepsOrderAndMakesSendWaitWhenFull) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto [tx, rx] = channel<int>(2);
    EXPECT_TRUE((co_await tx.send(1)).ok());
    EXPECT_TRUE((co_await tx.send(2)).ok());
    auto full = tx.try_send(3);
    EXPECT_TRUE(!full.ok() && full.error().code() == EAGAIN);
    if (!(full.unsent().has_value())) { ADD_FAILURE() << "full.unsent().has_value()"; co_return; }
    EXPECT_EQ(*full.unsent(), 3);
    auto blocked = Worker::current()->spawn([](Sender<int>& tx) -> Task<bool> {
      co_return (co_await tx.send(3)).ok();
    }(tx));
    co_await settle();
    EXPECT_FALSE(blocked.is_finished());  // backpressure
    EXPECT_EQ(*(co_await rx.recv()), 1);
    EXPECT_TRUE(co_await std::move(blocked));  // room went to the waiting sender
    EXPECT_EQ(*(co_await rx.recv()), 2);
    EXPECT_EQ(*(co_await rx.recv()), 3);
    EXPECT_EQ(rx.size(), 0u);
  }()));
}

TEST_P(SyncTest, CloseHandsWaitingSendersTheirMessagesBackAndReceiversDrainFirst) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto [tx, rx] = channel<std::string>(1);
    EXPECT_TRUE((co_await tx.send("kept")).ok());
    auto blocked = Worker::current()->spawn([](Sender<std::string>& tx) -> Task<std::string> {
      auto sent = co_await tx.send("returned");
      EXPECT_FALSE(sent.ok());
      if (sent.ok() || !sent.unsent()) co_return "";
      EXPECT_EQ(sent.error().code(), EPIPE);
      co_return std::move(*sent.unsent());
    }(tx));
    co_await settle();
    rx.close();
    EXPECT_EQ(co_await std::move(blocked), "returned");
    auto late = co_await tx.send("late");
    EXPECT_TRUE(!late.ok() && late.error().code() == EPIPE && late.unsent() && *late.unsent() == "late");
    EXPECT_EQ(*(co_await rx.recv()), "kept");  // drains what is left
    auto end = co_await rx.recv();
    EXPECT_TRUE(!end.ok() && end.error().code() == EPIPE);
  }()));
}

TEST_P(SyncTest, DroppingEverySenderEndsTheReceiversAfterTheBacklog) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto [tx, rx] = unbounded_channel<int>();
    auto waiting = Worker::current()->spawn([](Receiver<int> rx) -> Task<int> {
      int sum = 0;
      for (;;) {
        auto value = co_await rx.recv();
        if (!value) {
          EXPECT_EQ(value.error().code(), EPIPE);
          co_return sum;
        }
        sum += *value;
      }
    }(rx));
    {
      Sender<int> copy = tx;
      Sender<int> moved = std::move(tx);
      for (int i = 1; i <= 100; ++i) EXPECT_TRUE(copy.try_send(i).ok());  // unbounded: never full
    }
    EXPECT_EQ(co_await std::move(waiting), 5050);
  }()));
}

TEST_P(SyncTest, DroppingTheLastReceiverFailsSendsAndDestroysTheBacklog) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto tracker = std::make_shared<int>(0);
    auto [tx, rx] = channel<std::shared_ptr<int>>(4);
    EXPECT_TRUE((co_await tx.send(tracker)).ok());
    EXPECT_EQ(tracker.use_count(), 2);
    { auto gone = std::move(rx); }
    EXPECT_EQ(tracker.use_count(), 1);  // the message in the channel was destroyed
    auto sent = co_await tx.send(tracker);
    EXPECT_TRUE(!sent.ok() && sent.error().code() == EPIPE);
    EXPECT_TRUE(tx.is_closed());
  }()));
}

TEST_P(SyncTest, CancelledRecvLosesNoMessage) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto [tx, rx] = channel<int>(4);
    auto first = Worker::current()->spawn([](Receiver<int>& rx) -> Task<bool> {
      auto value = co_await rx.recv();
      co_return !value && value.error().is_cancelled();
    }(rx));
    auto second = Worker::current()->spawn([](Receiver<int>& rx) -> Task<int> {
      auto value = co_await rx.recv();
      co_return value.ok() ? *value : -1;
    }(rx));
    co_await settle();
    first.cancel();
    EXPECT_TRUE(co_await std::move(first));
    EXPECT_TRUE(tx.try_send(42).ok());
    EXPECT_EQ(co_await std::move(second), 42);
    // A timed-out recv took nothing either.
    auto timed_out = co_await timeout(10ms, rx.recv());
    EXPECT_TRUE(!timed_out.ok() && timed_out.error().is_timed_out());
    EXPECT_TRUE(tx.try_send(43).ok());
    EXPECT_EQ(*(co_await rx.recv()), 43);
  }()));
}

TEST_P(SyncTest, RecvHandedAMessageKeepsItWhenCancelledAfterwards) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto [tx, rx] = channel<int>(4);
    auto receiver = Worker::current()->spawn([](Receiver<int>& rx) -> Task<int> {
      auto value = co_await rx.recv();
      co_return value.ok() ? *value : -1;
    }(rx));
    co_await settle();
    EXPECT_TRUE(tx.try_send(5).ok());  // handed straight to the waiting receiver
    receiver.cancel();
    EXPECT_EQ(co_await std::move(receiver), 5);
    EXPECT_EQ(rx.size(), 0u);
  }()));
}

TEST_P(SyncTest, CancelledSendHandsTheMessageBackAndDoesNotSendIt) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto [tx, rx] = channel<int>(1);
    EXPECT_TRUE(tx.try_send(1).ok());
    auto sender = Worker::current()->spawn([](Sender<int>& tx) -> Task<int> {
      auto sent = co_await tx.send(2);
      if (sent.ok() || !sent.error().is_cancelled() || !sent.unsent()) co_return -1;
      co_return *sent.unsent();
    }(tx));
    co_await settle();
    sender.cancel();
    EXPECT_EQ(co_await std::move(sender), 2);
    EXPECT_EQ(*(co_await rx.recv()), 1);
    EXPECT_FALSE(rx.try_recv().ok());  // 2 was not sent: no duplicate
    // timeout() keeps the message too.
    EXPECT_TRUE(tx.try_send(3).ok());
    auto timed_out = co_await timeout(10ms, tx.send(4));
    EXPECT_TRUE(!timed_out.ok() && timed_out.error().is_timed_out());
    EXPECT_TRUE(timed_out.unsent().has_value() && *timed_out.unsent() == 4);
  }()));
}

TEST_P(SyncTest, ManyReceiversAreServedInTheOrderTheyWaited) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto [tx, rx] = channel<int>(8);
    std::vector<int> got(4, -1);
    std::vector<JoinHandle<void>> receivers;
    for (int i = 0; i < 4; ++i) {
      receivers.push_back(Worker::current()->spawn([](Receiver<int> rx, int& out) -> Task<void> {
        auto value = co_await rx.recv();
        out = value.ok() ? *value : -2;
      }(rx, got[i])));
      co_await settle();
    }
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(tx.try_send(i * 10).ok());
    for (auto& receiver : receivers) co_await std::move(receiver);
    EXPECT_EQ(got, (std::vector<int>{0, 10, 20, 30}));
  }()));
}

// --- Oneshot ---

TEST_P(SyncTest, OneshotDeliversOnceAndReportsADroppedSender) {
  EXPECT_TRUE(run([]() -> Task<void> {
    {
      auto [tx, rx] = oneshot<std::string>();
      auto waiting = Worker::current()->spawn([](OneshotReceiver<std::string> rx) -> Task<std::string> {
        auto value = co_await rx.recv();
        co_return value.ok() ? *value : "";
      }(std::move(rx)));
      co_await settle();
      EXPECT_TRUE(std::move(tx).send("reply").ok());
      EXPECT_EQ(co_await std::move(waiting), "reply");
    }
    {
      auto [tx, rx] = oneshot<int>();
      { auto dropped = std::move(tx); }
      auto value = co_await rx.recv();
      EXPECT_TRUE(!value.ok() && value.error().code() == EPIPE);
    }
    {
      auto [tx, rx] = oneshot<int>();
      { auto dropped = std::move(rx); }
      auto sent = std::move(tx).send(9);
      EXPECT_TRUE(!sent.ok() && sent.error().code() == EPIPE && sent.unsent() && *sent.unsent() == 9);
    }
    {
      auto [tx, rx] = oneshot<int>();
      auto timed_out = co_await timeout(5ms, rx.recv());
      EXPECT_TRUE(!timed_out.ok() && timed_out.error().is_timed_out());
      EXPECT_EQ(rx.try_recv().error().code(), EAGAIN);
      EXPECT_TRUE(std::move(tx).send(1).ok());
      EXPECT_EQ(*(co_await rx.recv()), 1);  // the value waited for the next recv
      EXPECT_EQ(rx.try_recv().error().code(), EPIPE);
    }
  }()));
}

// --- Watch ---

TEST_P(SyncTest, WatchShowsTheNewestValueAndEndsWhenTheSenderGoes) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto [tx, rx] = watch<int>(1);
    EXPECT_EQ(rx.get(), 1);
    EXPECT_FALSE(rx.has_changed());
    auto waiter = Worker::current()->spawn([](WatchReceiver<int> rx) -> Task<int> {
      if (!(co_await rx.changed()).ok()) co_return -1;
      co_return rx.get();
    }(rx));
    co_await settle();
    tx.send(2);
    EXPECT_EQ(co_await std::move(waiter), 2);
    tx.send(3);
    tx.send(4);  // 3 is skipped: receivers see the newest
    EXPECT_TRUE((co_await rx.changed()).ok());
    EXPECT_EQ(rx.get(), 4);
    auto quiet = co_await timeout(5ms, rx.changed());
    EXPECT_TRUE(!quiet.ok() && quiet.error().is_timed_out());
    auto subscriber = tx.subscribe();
    EXPECT_FALSE(subscriber.has_changed());
    { auto gone = std::move(tx); }
    auto end = co_await rx.changed();
    EXPECT_TRUE(!end.ok() && end.error().code() == EPIPE);
  }()));
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(SyncTest);

}  // namespace
}  // namespace surge
