// file_protocol.h: what the programs of bench/file_compare.py share (the protocol is written down at the
// top of that file):
//
//   BINARY --file=PATH --depth=N --seconds=S [--warmup=S] [--direct] [--block=4096] [--seed=N]
//
// reads random `block`-sized, `block`-aligned pieces of PATH with N reads in flight for a warm-up and then
// S seconds, prints exactly one JSON line on stdout (reads, seconds, CPU seconds of the whole process,
// latency quantiles) and exits 0. Each program is started pinned (taskset) by the driver.
//
// Depends on abseil (through //flags:parse) only: never on a surge library.
#ifndef SURGE_BENCH_PEERS_FILE_PROTOCOL_H_
#define SURGE_BENCH_PEERS_FILE_PROTOCOL_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "bench/latency_histogram.h"

namespace surge::bench {

struct FileArgs {
  std::string file;
  int depth = 1;
  double seconds = 1;
  double warmup = 0.2;
  bool direct = false;
  std::size_t block = 4096;
  std::uint64_t seed = 1;
  std::uint64_t file_size = 0;  // read with stat(2)
};

// Parses the flags above (absl: --help exits 0, a bad flag exits 1) and stats the file.
FileArgs parse_file_args(int argc, char** argv, absl::string_view usage);

// Opens args.file read-only (O_DIRECT with --direct); exits 1 with a message on failure.
int open_file(const FileArgs& args);

// Memory aligned to 4096 bytes (O_DIRECT), never freed (the programs are short-lived).
void* aligned_block(std::size_t size);

// Random block-aligned offsets (xorshift64*): cheap enough not to show next to a 1 µs read.
class OffsetSource {
 public:
  OffsetSource(const FileArgs& args, std::uint64_t stream);
  std::uint64_t next() noexcept {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return ((state_ * 0x2545F4914F6CDD1DULL) % blocks_) * block_;
  }

 private:
  std::uint64_t state_;
  std::uint64_t blocks_;
  std::uint64_t block_;
};

// The measured window: reads that finish during the warm-up are not counted; the first read to finish
// after it starts the window (and the CPU clock), the first to finish after `seconds` more ends it.
// record() says whether the caller should issue another read. One thread only.
class Window {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Window(const FileArgs& args);
  bool record(Clock::time_point started, Clock::time_point finished) noexcept;
  bool done() const noexcept { return done_; }
  // Prints the JSON line: {"impl": ..., "reads": ..., ...} plus `extra` (a JSON fragment without braces,
  // or empty).
  void print(absl::string_view impl, absl::string_view extra = "") const;

 private:
  Clock::time_point warm_until_;
  Clock::time_point end_;
  Clock::time_point first_;
  Clock::time_point last_;
  double cpu_first_ = 0;
  double cpu_last_ = 0;
  bool measuring_ = false;
  bool done_ = false;
  std::uint64_t reads_ = 0;
  LatencyHistogram latency_;
};

// User + system CPU time of the whole process (every thread), in seconds.
double process_cpu_seconds() noexcept;

}  // namespace surge::bench

#endif  // SURGE_BENCH_PEERS_FILE_PROTOCOL_H_
