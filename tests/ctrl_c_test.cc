// ctrl_c(): a 2-worker Runtime takes SIGINT/SIGTERM/SIGHUP over, on both backends. Signals are sent
// with kill(getpid(), ...) from a plain test thread (process-directed, like a terminal's Ctrl-C), and
// with raise() from a task on worker 0. This process would die of any signal the Runtime failed to
// take: surviving is part of every test.
#include "runtime/ctrl_c.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "runtime/runtime.h"
#include "runtime/spawn_blocking.h"
#include "runtime/testing/backend_param.h"
#include "runtime/testing/runtime_param.h"
#include "runtime/when.h"

namespace surge {
namespace {

using std::chrono::milliseconds;

// The test's own thread blocks the signals for the whole binary (and never unblocks them: one left
// pending after a test would otherwise kill the process), as the top of runtime.h recommends.
void block_signals_in_this_thread() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Whether the calling thread blocks `signal`.
bool blocks(int signal) {
  sigset_t current;
  pthread_sigmask(SIG_BLOCK, nullptr, &current);
  return sigismember(&current, signal) == 1;
}

// Sends `signal` to the process from a thread of its own, as an outside sender would.
void kill_from_another_thread(int signal) {
  std::thread([signal] { ASSERT_EQ(kill(getpid(), signal), 0); }).join();
}

bool wait_until(const std::function<bool()>& condition, std::chrono::seconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

class CtrlCTest : public testing::RuntimeTest {
 protected:
  void SetUp() override {
    block_signals_in_this_thread();
    RuntimeTest::SetUp();
    if (runtime_) start({});  // with the default signal handling
  }

  // Waits (bounded) for `handle`'s task and returns its value; fails the test on a hang.
  template <typename T>
  std::optional<T> wait(JoinHandle<T>& handle, std::chrono::seconds limit = std::chrono::seconds(10)) {
    if (!wait_until([&] { return handle.is_finished() || handle.is_abandoned(); }, limit)) {
      ADD_FAILURE() << "the task did not finish in time";
      return std::nullopt;
    }
    return handle.take_result();
  }

};

Task<Result<int>> await_ctrl_c() { co_return co_await ctrl_c(); }

TEST_P(CtrlCTest, OneSignalWakesEveryWaiterOnEveryWorker) {
  if (!runtime_) return;
  std::vector<JoinHandle<Result<int>>> waiters;
  for (int i = 0; i < 6; ++i) waiters.push_back(runtime_->spawn_on(i % 2, await_ctrl_c()));
  ASSERT_TRUE(wait_until([&] { return runtime_->signal_waiters() == 6; })) << runtime_->signal_waiters();
  kill_from_another_thread(SIGINT);
  for (auto& waiter : waiters) {
    auto outcome = wait(waiter);
    ASSERT_TRUE(outcome && *outcome) << (outcome ? outcome->error().message() : "hung");
    EXPECT_EQ(**outcome, SIGINT);
  }
  EXPECT_EQ(runtime_->kept_signals(), 0u);
}

// Arms the Runtime's signal handling: a first ctrl_c() (here one that times out at once). Before that,
// a signal takes its default action (see BeforeAnyCtrlCASignalTakesItsDefaultAction).
void arm(Runtime& runtime) {
  (void)runtime.block_on([]() -> Task<Result<int>> { co_return co_await timeout(milliseconds(1), ctrl_c()); }());
}

TEST_P(CtrlCTest, ASignalWhileNobodyWaitsIsKeptForTheNextWaiter) {
  if (!runtime_) return;
  arm(*runtime_);
  kill_from_another_thread(SIGTERM);
  ASSERT_TRUE(wait_until([&] { return runtime_->kept_signals() == 1; })) << "the Runtime did not read SIGTERM";
  kill_from_another_thread(SIGTERM);  // coalesced with the kept one
  kill_from_another_thread(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return runtime_->kept_signals() == 2; }));
  auto first = runtime_->spawn_on(1, await_ctrl_c());
  auto first_outcome = wait(first);
  ASSERT_TRUE(first_outcome && *first_outcome);
  EXPECT_EQ(**first_outcome, SIGTERM);  // oldest first, one per wait
  auto second = runtime_->spawn_on(0, await_ctrl_c());
  auto second_outcome = wait(second);
  ASSERT_TRUE(second_outcome && *second_outcome);
  EXPECT_EQ(**second_outcome, SIGHUP);
  EXPECT_EQ(runtime_->kept_signals(), 0u);
  // Nothing is kept now: the next waiter really waits.
  auto third = runtime_->spawn_on(1, await_ctrl_c());
  ASSERT_TRUE(wait_until([&] { return runtime_->signal_waiters() == 1; }));
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_FALSE(third.is_finished());
  kill_from_another_thread(SIGINT);
  auto third_outcome = wait(third);
  ASSERT_TRUE(third_outcome && *third_outcome);
  EXPECT_EQ(**third_outcome, SIGINT);
}

TEST_P(CtrlCTest, CancelledWaitReturnsECanceledAndLeavesTheOthers) {
  if (!runtime_) return;
  auto cancelled = runtime_->spawn_on(1, await_ctrl_c());
  auto kept_waiting = runtime_->spawn_on(0, await_ctrl_c());
  ASSERT_TRUE(wait_until([&] { return runtime_->signal_waiters() == 2; }));
  cancelled.cancel();
  auto outcome = wait(cancelled);
  ASSERT_TRUE(outcome);
  ASSERT_FALSE(*outcome);
  EXPECT_TRUE(outcome->error().is_cancelled());
  EXPECT_EQ(runtime_->signal_waiters(), 1u);
  kill_from_another_thread(SIGINT);
  auto other = wait(kept_waiting);
  ASSERT_TRUE(other && *other);
  EXPECT_EQ(**other, SIGINT);
}

TEST_P(CtrlCTest, TimeoutAroundCtrlC) {
  if (!runtime_) return;
  auto timed = runtime_->spawn_on(1, []() -> Task<Result<int>> { co_return co_await timeout(milliseconds(20), ctrl_c()); }());
  auto outcome = wait(timed);
  ASSERT_TRUE(outcome && !*outcome);
  EXPECT_TRUE(outcome->error().is_timed_out()) << outcome->error().message();
  EXPECT_EQ(runtime_->signal_waiters(), 0u);
}

TEST_P(CtrlCTest, RaiseOnWorkerZeroIsRead) {
  if (!runtime_) return;
  auto waiter = runtime_->spawn_on(1, await_ctrl_c());
  ASSERT_TRUE(wait_until([&] { return runtime_->signal_waiters() == 1; }));
  auto raiser = runtime_->spawn_on(0, []() -> Task<int> { co_return raise(SIGINT); }());
  auto raised = wait(raiser);
  ASSERT_TRUE(raised);
  EXPECT_EQ(*raised, 0);
  auto outcome = wait(waiter);
  ASSERT_TRUE(outcome && *outcome);
  EXPECT_EQ(**outcome, SIGINT);
}

TEST_P(CtrlCTest, RuntimeThreadsBlockTheSignalsAndTheCallerKeepsItsMask) {
  if (!runtime_) return;
  // This thread blocks them already (SetUp); a fresh thread that does not shows the mask is restored.
  std::thread([this] {
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    RuntimeOptions options{.workers = 2, .worker = {.backend = GetParam()}};
    auto runtime = Runtime::create(options);
    ASSERT_TRUE(runtime);
    EXPECT_FALSE(blocks(SIGINT)) << "create() did not restore the caller's mask";
    auto in_worker = (*runtime)->spawn_on(1, []() -> Task<bool> { co_return blocks(SIGINT) && blocks(SIGTERM) && blocks(SIGHUP); }());
    auto in_pool = (*runtime)->spawn_on(0, []() -> Task<bool> { co_return co_await spawn_blocking([] { return blocks(SIGINT); }); }());
    EXPECT_TRUE(wait(in_worker).value_or(false));
    EXPECT_TRUE(wait(in_pool).value_or(false));
    // block_on blocks them while it waits, and restores the mask after.
    EXPECT_TRUE((*runtime)->block_on([]() -> Task<bool> { co_return true; }()));
    EXPECT_FALSE(blocks(SIGINT));
    (*runtime)->shutdown();
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
  }).join();
}

TEST_P(CtrlCTest, OptOutLeavesSignalsAloneAndCtrlCFails) {
  if (!runtime_) return;
  start({.signals = {}});
  auto mask = runtime_->spawn_on(1, []() -> Task<bool> { co_return blocks(SIGHUP); }());
  // This thread blocks SIGINT, SIGTERM and SIGHUP, and the workers inherit that: with no signal
  // handling, create() adds nothing. Look at one the test does not block.
  auto usr = runtime_->spawn_on(1, []() -> Task<bool> { co_return blocks(SIGUSR2); }());
  EXPECT_FALSE(wait(usr).value_or(true));
  (void)wait(mask);
  auto outcome = runtime_->block_on(await_ctrl_c());
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.error().code(), ENOTSUP);
}

TEST_P(CtrlCTest, CustomSignalSet) {
  if (!runtime_) return;
  start({.signals = {SIGUSR1}});
  auto blocked = runtime_->spawn_on(1, []() -> Task<bool> { co_return blocks(SIGUSR1); }());
  EXPECT_TRUE(wait(blocked).value_or(false));
  auto waiter = runtime_->spawn_on(1, await_ctrl_c());
  ASSERT_TRUE(wait_until([&] { return runtime_->signal_waiters() == 1; }));
  // SIGUSR1's default action is to terminate: this thread must block it too before sending it.
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, nullptr);
  kill_from_another_thread(SIGUSR1);
  auto outcome = wait(waiter);
  ASSERT_TRUE(outcome && *outcome);
  EXPECT_EQ(**outcome, SIGUSR1);
}

// A service that never awaits ctrl_c() still stops on Ctrl-C, as it would without the Runtime: until a
// task first awaits ctrl_c(), the Runtime re-raises what it reads, and the default action terminates.
TEST(CtrlCDeathTest, BeforeAnyCtrlCASignalTakesItsDefaultAction) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        block_signals_in_this_thread();  // as block_on() does: only the Runtime can read it
        auto runtime = Runtime::create({.workers = 2});
        if (!runtime) std::exit(2);
        kill(getpid(), SIGINT);
        std::this_thread::sleep_for(std::chrono::seconds(5));
        std::exit(0);  // survived: the signal was swallowed
      },
      ::testing::KilledBySignal(SIGINT), "");
}

TEST(CtrlCStandaloneTest, OffARuntimeItFailsWithENotSup) {
  auto worker = Worker::create();
  ASSERT_TRUE(worker);
  auto outcome = (*worker)->block_on(await_ctrl_c());
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.error().code(), ENOTSUP);
}

TEST_P(CtrlCTest, ShutdownWithWaitersPending) {
  if (!runtime_) return;
  std::vector<JoinHandle<Result<int>>> waiters;
  for (int i = 0; i < 4; ++i) waiters.push_back(runtime_->spawn_on(i % 2, await_ctrl_c()));
  ASSERT_TRUE(wait_until([&] { return runtime_->signal_waiters() == 4; }));
  runtime_->shutdown();
  for (auto& waiter : waiters) EXPECT_TRUE(waiter.is_abandoned());
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(CtrlCTest);

}  // namespace
}  // namespace surge
