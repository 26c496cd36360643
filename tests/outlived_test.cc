// Objects that belong to a worker (sockets, SignalSets) and are destroyed after it: the fd is still
// closed, one line names the type on stderr (once per kind), and outlived_worker_reports() counts each.
// Also Worker::index() and Worker::runtime().
#include <gtest/gtest.h>
#include <signal.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/tcp_listener.h"
#include "runtime/runtime.h"
#include "runtime/signal_set.h"
#include "runtime/testing/backend_param.h"
#include "runtime/testing/fd_count.h"

namespace surge {
namespace {

class OutlivedTest : public testing::BackendTest {};

TEST_P(OutlivedTest, SocketsAndSignalSetsThatOutliveTheirWorkerAreClosedAndReported) {
  const int fds_before = testing::open_fd_count();
  const std::uint64_t reports_before = outlived_worker_reports();
  std::vector<TcpListener> listeners;  // "a static container destroyed after the runtime"
  for (int i = 0; i < 2; ++i) {
    auto listener = TcpListener::bind(*worker_, SocketAddress::ipv4_loopback(0));
    ASSERT_TRUE(listener) << listener.error().message();
    listeners.push_back(std::move(*listener));
  }
  auto signals = SignalSet::create(*worker_, {SIGUSR2});
  ASSERT_TRUE(signals);
  std::optional<SignalSet> kept_signals;
  kept_signals.emplace(std::move(*signals));
  EXPECT_EQ(testing::open_fd_count(), fds_before + 3);

  worker_.reset();  // the worker goes first (its own fds with it)
  const int fds_with_objects = testing::open_fd_count();
  ::testing::internal::CaptureStderr();
  listeners.clear();
  kept_signals.reset();
  const std::string printed = ::testing::internal::GetCapturedStderr();

  EXPECT_EQ(outlived_worker_reports(), reports_before + 3);
  EXPECT_EQ(testing::open_fd_count(), fds_with_objects - 3) << "an fd was leaked";
  // Once per kind in the process: this test may run twice (once per backend), so only the first run
  // sees the lines.
  if (reports_before == 0) {
    EXPECT_NE(printed.find("TcpListener outlived its worker"), std::string::npos) << printed;
    EXPECT_NE(printed.find("SignalSet outlived its worker"), std::string::npos) << printed;
    EXPECT_EQ(printed.find("TcpListener"), printed.rfind("TcpListener")) << "reported twice: " << printed;
  } else {
    EXPECT_EQ(printed, "");
  }
}

TEST_P(OutlivedTest, ObjectsDroppedWhileTheirWorkerLivesAreNotReported) {
  const std::uint64_t reports_before = outlived_worker_reports();
  {
    auto listener = TcpListener::bind(*worker_, SocketAddress::ipv4_loopback(0));
    ASSERT_TRUE(listener);
    auto signals = SignalSet::create(*worker_, {SIGUSR2});
    ASSERT_TRUE(signals);
  }
  EXPECT_EQ(outlived_worker_reports(), reports_before);
}

TEST_P(OutlivedTest, StandaloneWorkerHasIndexZeroAndNoRuntime) {
  EXPECT_EQ(worker_->index(), 0u);
  EXPECT_EQ(worker_->runtime(), nullptr);
}

TEST_P(OutlivedTest, RuntimeWorkersKnowTheirIndexAndRuntime) {
  auto runtime = Runtime::create({.workers = 2, .worker = {.backend = GetParam()}});
  ASSERT_TRUE(runtime);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ((*runtime)->worker(i).index(), i);
    EXPECT_EQ((*runtime)->worker(i).runtime(), runtime->get());
    const std::size_t seen = (*runtime)->block_on([](Runtime& rt, std::size_t i) -> Task<std::size_t> {
      co_return co_await rt.spawn_on(i, []() -> Task<std::size_t> { co_return Worker::current()->index(); }());
    }(**runtime, i));
    EXPECT_EQ(seen, i);
  }
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(OutlivedTest);

}  // namespace
}  // namespace surge
