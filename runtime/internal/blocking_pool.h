// blocking_pool.h: a small pool of plain threads for calls that block (getaddrinfo, file calls on the
// epoll backend), so that they never stall a worker's loop.
//
// Tasks use it through spawn_blocking() (spawn_blocking.h); the Runtime owns one pool, and a Worker used
// on its own falls back to BlockingPool::shared(). Jobs are intrusive (no allocation to submit one) and
// run in submission order on whichever pool thread is free. The pool threads wait on a condition
// variable: they are not workers and have no ring to sleep in.
#ifndef SURGE_RUNTIME_INTERNAL_BLOCKING_POOL_H_
#define SURGE_RUNTIME_INTERNAL_BLOCKING_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace surge::internal {

struct BlockingJob {
  void (*run)(BlockingJob& job) noexcept = nullptr;  // called on a pool thread
  BlockingJob* next = nullptr;
};

class BlockingPool {
 public:
  explicit BlockingPool(std::size_t threads);
  // Runs every job already submitted, then joins the threads.
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Any thread. `job` must stay alive until its `run` has been called.
  void submit(BlockingJob& job);

  std::size_t threads() const noexcept { return threads_.size(); }

  // A process-wide pool of 4 threads, started on first use.
  static BlockingPool& shared();

 private:
  void serve();

  std::mutex mutex_;
  std::condition_variable available_;
  BlockingJob* head_ = nullptr;
  BlockingJob* tail_ = nullptr;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_INTERNAL_BLOCKING_POOL_H_
