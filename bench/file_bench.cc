// file_bench: surge's rows of bench/file_compare.py (the protocol is in bench/peers/file_protocol.h):
//
//   file_bench --backend=io_uring|epoll --file=PATH --depth=N --seconds=S [--direct] [--no_fast_path]
//
// One Worker on the calling thread (the driver pins the process); `depth` tasks, each reading a random
// block with File::read_at, recording its latency, and reading the next. Buffered reads take the
// page-cache fast path (preadv2 RWF_NOWAIT inline) unless --no_fast_path; on epoll misses and O_DIRECT
// reads go to the blocking pool, on io_uring to the ring.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "bench/peers/file_protocol.h"
#include "fs/file.h"
#include "runtime/worker.h"

ABSL_FLAG(std::string, backend, "io_uring", "the worker's backend: io_uring or epoll");
ABSL_FLAG(bool, defer_taskrun, true, "io_uring: set the ring up with DEFER_TASKRUN where the kernel has it");
ABSL_FLAG(bool, fixed_files, true, "io_uring: register the file in the ring's fixed-file table");
ABSL_FLAG(bool, no_fast_path, false, "turn the page-cache fast path off (every read through the ring/pool)");

namespace surge::bench {
namespace {

Task<void> reader(fs::File& file, Window& window, const FileArgs& args, int stream, int& failures) {
  OffsetSource offsets(args, static_cast<std::uint64_t>(stream));
  auto* block = static_cast<std::byte*>(aligned_block(args.block));
  for (;;) {
    const auto started = Window::Clock::now();
    auto n = co_await file.read_at(MutableBuffer(block, args.block), offsets.next());
    const auto finished = Window::Clock::now();
    if (!n || *n != args.block) {
      if (failures++ == 0) std::fprintf(stderr, "read: %s\n", n ? "short read" : n.error().message().c_str());
      co_return;
    }
    if (!window.record(started, finished)) co_return;
  }
}

Task<int> run(const FileArgs& args, bool fast_path) {
  auto file = co_await fs::File::open(args.file, fs::OpenOptions{.direct = args.direct, .cached_read_fast_path = fast_path});
  if (!file) {
    std::fprintf(stderr, "%s\n", file.error().message().c_str());
    co_return 1;
  }
  Window window(args);
  int failures = 0;
  std::vector<JoinHandle<void>> readers;
  for (int i = 0; i < args.depth; ++i) readers.push_back(Worker::current()->spawn(reader(*file, window, args, i, failures)));
  for (auto& handle : readers) co_await std::move(handle);
  if (failures > 0) co_return 1;
  const fs::CachedReadStats& stats = file->cached_read_stats();
  window.print(absl::GetFlag(FLAGS_backend) == "epoll" ? "surge_epoll" : "surge_io_uring",
               absl::StrFormat("\"inline_reads\": %d, \"misses\": %d, \"skipped\": %d, \"wait_syscalls\": %d, "
                               "\"operations\": %d",
                               stats.inline_reads, stats.misses, stats.skipped,
                               Worker::current()->counters().wait_syscalls,
                               Worker::current()->counters().operations_completed));
  co_return 0;
}

}  // namespace
}  // namespace surge::bench

int main(int argc, char** argv) {
  const auto args = surge::bench::parse_file_args(
      argc, argv,
      "file_bench: surge's rows of bench/file_compare.py, random block reads of one file\n"
      "Usage: file_bench --backend=io_uring|epoll --file=PATH --depth=N --seconds=S [--direct] [--no_fast_path]");
  const std::string backend = absl::GetFlag(FLAGS_backend);
  if (backend != "io_uring" && backend != "epoll") {
    std::fprintf(stderr, "file_bench: --backend must be io_uring or epoll, got %s\n", backend.c_str());
    return 1;
  }
  surge::WorkerOptions options{.backend = backend == "epoll" ? surge::BackendChoice::kEpoll : surge::BackendChoice::kIoUring};
  options.backend_options.allow_defer_taskrun = absl::GetFlag(FLAGS_defer_taskrun);
  options.backend_options.allow_fixed_files = absl::GetFlag(FLAGS_fixed_files);
  auto worker = surge::Worker::create(options);
  if (!worker) {
    std::fprintf(stderr, "file_bench: %s\n", worker.error().message().c_str());
    return 1;
  }
  return (*worker)->block_on(surge::bench::run(args, !absl::GetFlag(FLAGS_no_fast_path)));
}
