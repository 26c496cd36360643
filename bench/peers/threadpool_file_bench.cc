// threadpool_file_bench: the "plain thread pool" row of bench/file_compare.py (protocol:
// file_protocol.h). What a runtime without asynchronous file I/O does (tokio::fs, most thread-pool
// offloads): the loop thread hands each read to a pool of --threads threads doing pread(2) through a
// mutex-and-condition-variable queue, and waits on another for the completions; `depth` reads in flight.
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "bench/peers/file_protocol.h"
#include "flags/parse.h"

ABSL_FLAG(int, threads, 4, "pool threads (libuv's and surge's default pool size is 4)");

namespace surge::bench {
namespace {

struct Request {
  void* buffer;
  std::uint64_t offset;
  ssize_t result = 0;
  Window::Clock::time_point started;
  int stream;
};

class Pool {
 public:
  Pool(int fd, std::size_t block, int threads) : fd_(fd), block_(block) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { serve(); });
  }
  ~Pool() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_.notify_all();
    for (auto& thread : threads_) thread.join();
  }
  void submit(Request* request) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(request);
    }
    work_.notify_one();
  }
  // Waits for at least one completion; moves them all into `out`.
  void wait(std::vector<Request*>& out) {
    std::unique_lock lock(done_mutex_);
    done_cv_.wait(lock, [this] { return !done_.empty(); });
    out.swap(done_);
  }

 private:
  void serve() {
    for (;;) {
      Request* request;
      {
        std::unique_lock lock(mutex_);
        work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        request = queue_.front();
        queue_.pop_front();
      }
      request->result = ::pread(fd_, request->buffer, block_, static_cast<off_t>(request->offset));
      {
        std::lock_guard lock(done_mutex_);
        done_.push_back(request);
      }
      done_cv_.notify_one();
    }
  }

  int fd_;
  std::size_t block_;
  std::mutex mutex_;
  std::condition_variable work_;
  std::deque<Request*> queue_;
  bool stopping_ = false;
  std::mutex done_mutex_;
  std::condition_variable done_cv_;
  std::vector<Request*> done_;
  std::vector<std::thread> threads_;
};

}  // namespace
}  // namespace surge::bench

int main(int argc, char** argv) {
  using namespace surge::bench;
  const FileArgs args = parse_file_args(
      argc, argv,
      "threadpool_file_bench: pread(2) on a plain thread pool, random block reads of one file\n"
      "Usage: threadpool_file_bench --file=PATH --depth=N --seconds=S [--direct] [--threads=4]");
  const int threads = surge::flags::get_in_range(FLAGS_threads, 1, 256);
  const int fd = open_file(args);
  std::vector<Request> requests(static_cast<std::size_t>(args.depth));
  std::vector<OffsetSource> offsets;
  for (int i = 0; i < args.depth; ++i) offsets.emplace_back(args, static_cast<std::uint64_t>(i));
  Pool pool(fd, args.block, threads);
  Window window(args);
  for (int i = 0; i < args.depth; ++i) {
    Request& request = requests[static_cast<std::size_t>(i)];
    request.buffer = aligned_block(args.block);
    request.stream = i;
    request.offset = offsets[static_cast<std::size_t>(i)].next();
    request.started = Window::Clock::now();
    pool.submit(&request);
  }
  int in_flight = args.depth;
  std::vector<Request*> finished;
  while (in_flight > 0) {
    pool.wait(finished);
    for (Request* request : finished) {
      --in_flight;
      if (request->result != static_cast<ssize_t>(args.block)) {
        std::fprintf(stderr, "pread: %s\n", request->result < 0 ? "failed" : "short read");
        return 1;
      }
      if (!window.record(request->started, Window::Clock::now())) continue;
      request->offset = offsets[static_cast<std::size_t>(request->stream)].next();
      request->started = Window::Clock::now();
      ++in_flight;
      pool.submit(request);
    }
    finished.clear();
  }
  window.print("threadpool");
  return 0;
}
