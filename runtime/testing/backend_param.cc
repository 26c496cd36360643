#include "runtime/testing/backend_param.h"

namespace surge::testing {

void make_backend_or_skip(BackendChoice choice, const BackendOptions& options, std::unique_ptr<Backend>& backend) {
  auto made = make_backend(choice, options);
  if (made) {
    backend = std::move(*made);
    return;
  }
  if (choice == BackendChoice::kIoUring && is_unavailable(made.error())) {
    GTEST_SKIP() << "io_uring is not available here: " << made.error().message();
  }
  FAIL() << "could not create the " << backend_choice_name(choice) << " backend: " << made.error().message();
}

void BackendTest::create_worker(const BackendOptions& options) {
  worker_.reset();
  std::unique_ptr<Backend> backend;
  make_backend_or_skip(GetParam(), options, backend);
  if (backend) worker_ = Worker::with_backend(std::move(backend));
}

bool BackendTest::run(Task<void> task, std::chrono::milliseconds limit) {
  if (!worker_) {
    ADD_FAILURE() << "no worker";
    return false;
  }
  return run_bounded(*worker_, std::move(task), limit);
}

bool run_bounded(Worker& worker, Task<void> task, std::chrono::milliseconds limit) {
  auto as_bool = [](Task<void> inner) -> Task<bool> {
    co_await std::move(inner);
    co_return true;
  };
  const bool finished = worker.block_on_for(as_bool(std::move(task)), limit).has_value();
  if (!finished) ADD_FAILURE() << "the test task did not finish within " << limit.count() << " ms";
  return finished;
}

std::string backend_test_name(const ::testing::TestParamInfo<BackendChoice>& info) {
  return info.param == BackendChoice::kIoUring ? "IoUring" : "Epoll";
}

}  // namespace surge::testing
