#include "bench/peers/file_protocol.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "absl/flags/flag.h"
#include "flags/parse.h"

ABSL_FLAG(std::string, file, "", "the file to read (required)");
ABSL_FLAG(int, depth, 1, "reads in flight (1-1024)");
ABSL_FLAG(double, seconds, 1.0, "length of the measured window, in seconds");
ABSL_FLAG(double, warmup, 0.2, "warm-up before the window, in seconds (not counted)");
ABSL_FLAG(bool, direct, false, "open with O_DIRECT (aligned buffers)");
ABSL_FLAG(int, block, 4096, "bytes per read, also the offsets' alignment (512-1048576)");
ABSL_FLAG(std::uint64_t, seed, 1, "seed of the random offsets");

namespace surge::bench {

FileArgs parse_file_args(int argc, char** argv, absl::string_view usage) {
  surge::flags::parse_command_line(argc, argv, usage);
  FileArgs args;
  args.file = absl::GetFlag(FLAGS_file);
  if (args.file.empty()) {
    std::fprintf(stderr, "%s: --file is required\n", argv[0]);
    std::exit(1);
  }
  args.depth = surge::flags::get_in_range(FLAGS_depth, 1, 1024);
  args.seconds = surge::flags::get_in_range(FLAGS_seconds, 0.01, 600.0);
  args.warmup = surge::flags::get_in_range(FLAGS_warmup, 0.0, 60.0);
  args.direct = absl::GetFlag(FLAGS_direct);
  args.block = static_cast<std::size_t>(surge::flags::get_in_range(FLAGS_block, 512, 1 << 20));
  args.seed = absl::GetFlag(FLAGS_seed);
  struct stat info {};
  if (::stat(args.file.c_str(), &info) != 0) {
    std::fprintf(stderr, "%s: stat %s: %s\n", argv[0], args.file.c_str(), std::strerror(errno));
    std::exit(1);
  }
  args.file_size = static_cast<std::uint64_t>(info.st_size);
  if (args.file_size < args.block) {
    std::fprintf(stderr, "%s: %s is smaller than one block\n", argv[0], args.file.c_str());
    std::exit(1);
  }
  return args;
}

int open_file(const FileArgs& args) {
  const int fd = ::open(args.file.c_str(), O_RDONLY | O_CLOEXEC | (args.direct ? O_DIRECT : 0));
  if (fd < 0) {
    std::fprintf(stderr, "open %s: %s\n", args.file.c_str(), std::strerror(errno));
    std::exit(1);
  }
  return fd;
}

void* aligned_block(std::size_t size) {
  void* memory = nullptr;
  if (posix_memalign(&memory, 4096, size) != 0) std::abort();
  std::memset(memory, 0, size);
  return memory;
}

OffsetSource::OffsetSource(const FileArgs& args, std::uint64_t stream)
    : state_((args.seed * 0x9E3779B97F4A7C15ULL) ^ (stream + 1) * 0xBF58476D1CE4E5B9ULL),
      blocks_(args.file_size / args.block), block_(args.block) {
  if (state_ == 0) state_ = 1;
}

Window::Window(const FileArgs& args) {
  const auto now = Clock::now();
  warm_until_ = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(args.warmup));
  end_ = warm_until_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(args.seconds));
}

bool Window::record(Clock::time_point started, Clock::time_point finished) noexcept {
  if (done_) return false;
  if (!measuring_) {
    if (finished < warm_until_) return true;
    measuring_ = true;
    first_ = finished;
    cpu_first_ = process_cpu_seconds();
    return true;  // the read that opens the window is not counted: it began in the warm-up
  }
  ++reads_;
  latency_.record(finished - started);
  if (finished >= end_) {
    done_ = true;
    last_ = finished;
    cpu_last_ = process_cpu_seconds();
    return false;
  }
  return true;
}

void Window::print(absl::string_view impl, absl::string_view extra) const {
  const double seconds = std::chrono::duration<double>(last_ - first_).count();
  const double cpu = cpu_last_ - cpu_first_;
  std::printf(
      "{\"impl\": \"%.*s\", \"reads\": %llu, \"seconds\": %.6f, \"cpu_seconds\": %.6f, \"iops\": %.1f, "
      "\"cpu_us_per_read\": %.4f, \"p50_us\": %.3f, \"p99_us\": %.3f%s%.*s}\n",
      static_cast<int>(impl.size()), impl.data(), static_cast<unsigned long long>(reads_), seconds, cpu,
      seconds > 0 ? static_cast<double>(reads_) / seconds : 0.0,
      reads_ > 0 ? cpu * 1e6 / static_cast<double>(reads_) : 0.0, latency_.quantile(0.5).count() / 1e3,
      latency_.quantile(0.99).count() / 1e3, extra.empty() ? "" : ", ", static_cast<int>(extra.size()),
      extra.data());
  std::fflush(stdout);
}

double process_cpu_seconds() noexcept {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

}  // namespace surge::bench
