// backend_param.h: runs a GoogleTest suite once per backend (io_uring, epoll).
//
//   class EchoTest : public surge::testing::BackendTest {};
//   TEST_P(EchoTest, RoundTrip) { EXPECT_TRUE(run(round_trip())); }
//   SURGE_INSTANTIATE_FOR_EACH_BACKEND(EchoTest);
//
// A backend the kernel refuses (io_uring disabled, seccomp) makes its tests skip with the reason printed;
// any other failure to create one fails the test. run() bounds every test task in time: a hang is a
// failure with a message, never a CI timeout.
#ifndef SURGE_RUNTIME_TESTING_BACKEND_PARAM_H_
#define SURGE_RUNTIME_TESTING_BACKEND_PARAM_H_

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "runtime/backend/backend_factory.h"
#include "runtime/task.h"
#include "runtime/worker.h"

namespace surge::testing {

// True when `error` means "this kernel or sandbox does not offer the backend", which is a skip.
inline bool is_unavailable(const Error& error) {
  return error.code() == EPERM || error.code() == ENOSYS || error.code() == ENOTSUP || error.code() == EINVAL ||
         error.code() == EACCES;
}

// Creates a backend of `choice` into `backend`, or skips the test (io_uring unavailable) or fails it.
void make_backend_or_skip(BackendChoice choice, const BackendOptions& options, std::unique_ptr<Backend>& backend);

class BackendTest : public ::testing::TestWithParam<BackendChoice> {
 protected:
  void SetUp() override { create_worker(BackendOptions{}); }

  // Replaces the worker with one whose backend has `options` (for small queues and the like).
  void create_worker(const BackendOptions& options);

  // Runs `task` to completion on the worker, failing the test if it takes longer than `limit`.
  bool run(Task<void> task, std::chrono::milliseconds limit = std::chrono::seconds(10));

  std::unique_ptr<Worker> worker_;
};

std::string backend_test_name(const ::testing::TestParamInfo<BackendChoice>& info);

// Runs `task` to completion on `worker`, failing the test if it takes longer than `limit` (BackendTest::run
// for fixtures of their own).
bool run_bounded(Worker& worker, Task<void> task, std::chrono::milliseconds limit);

// Lets spawned tasks run until they park in the backend (a few turns of the loop).
inline Task<void> settle() {
  for (int i = 0; i < 5; ++i) co_await yield();
}

}  // namespace surge::testing

namespace surge {
// Readable test parameter names in GoogleTest output ("io_uring" rather than "1-byte object <01>").
inline void PrintTo(BackendChoice choice, std::ostream* out) { *out << backend_choice_name(choice); }
}  // namespace surge

#define SURGE_INSTANTIATE_FOR_EACH_BACKEND(suite)                                                          \
  INSTANTIATE_TEST_SUITE_P(Backends, suite,                                                                \
                           ::testing::Values(::surge::BackendChoice::kIoUring, ::surge::BackendChoice::kEpoll), \
                           ::surge::testing::backend_test_name)

#endif  // SURGE_RUNTIME_TESTING_BACKEND_PARAM_H_
