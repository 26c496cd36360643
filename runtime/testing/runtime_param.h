// runtime_param.h: a GoogleTest fixture with a Runtime of N workers on the parameter's backend.
//
//   class GroupTest : public surge::testing::RuntimeTest {};
//   TEST_P(GroupTest, Joins) { if (!runtime_) return; EXPECT_TRUE(run(joins(*runtime_))); }
//   SURGE_INSTANTIATE_FOR_EACH_BACKEND(GroupTest);
//
// SetUp starts 2 workers without signal handling (start() for other options); an unavailable backend
// skips the test and leaves runtime_ null. run() is block_on bounded in time: a hang fails the test and
// aborts (the task still refers to the caller's frame, so there is no safe way to go on).
#ifndef SURGE_RUNTIME_TESTING_RUNTIME_PARAM_H_
#define SURGE_RUNTIME_TESTING_RUNTIME_PARAM_H_

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>

#include "runtime/runtime.h"
#include "runtime/testing/backend_param.h"

namespace surge::testing {

class RuntimeTest : public ::testing::TestWithParam<BackendChoice> {
 protected:
  void SetUp() override {
    std::unique_ptr<Backend> probe;
    make_backend_or_skip(GetParam(), {}, probe);
    if (!probe) return;
    probe.reset();
    start({.signals = {}});
  }

  // Replaces the runtime with one of `options` (2 workers unless it says otherwise, this backend).
  void start(RuntimeOptions options) {
    runtime_.reset();
    if (options.workers == 0) options.workers = 2;
    options.worker.backend = GetParam();
    auto runtime = Runtime::create(options);
    ASSERT_TRUE(runtime) << runtime.error().message();
    runtime_ = std::move(*runtime);
  }

  template <typename T>
  T run(Task<T> task, std::chrono::seconds limit = std::chrono::seconds(20)) {
    auto result = std::async(std::launch::async, [&] { return runtime_->block_on(std::move(task)); });
    if (result.wait_for(limit) != std::future_status::ready) {
      ADD_FAILURE() << "timed out";
      std::fflush(stdout);
      std::abort();
    }
    return result.get();
  }

  std::unique_ptr<Runtime> runtime_;
};

}  // namespace surge::testing

#endif  // SURGE_RUNTIME_TESTING_RUNTIME_PARAM_H_
