#include "runtime/internal/blocking_pool.h"

namespace surge::internal {

BlockingPool::BlockingPool(std::size_t threads) {
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { serve(); });
}

BlockingPool::~BlockingPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  available_.notify_all();
  for (std::thread& thread : threads_) thread.join();
}

void BlockingPool::submit(BlockingJob& job) {
  job.next = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (tail_ != nullptr) {
      tail_->next = &job;
    } else {
      head_ = &job;
    }
    tail_ = &job;
  }
  available_.notify_one();
}

void BlockingPool::serve() {
  for (;;) {
    BlockingJob* job = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      available_.wait(lock, [this] { return head_ != nullptr || stopping_; });
      if (head_ == nullptr) return;  // stopping, and every submitted job has been taken
      job = head_;
      head_ = job->next;
      if (head_ == nullptr) tail_ = nullptr;
    }
    job->run(*job);
  }
}

BlockingPool& BlockingPool::shared() {
  static BlockingPool pool(4);
  return pool;
}

}  // namespace surge::internal
