#include "bench/servers/server_common.h"

#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"

namespace surge::bench {
namespace {

long long micros(const timeval& time) { return static_cast<long long>(time.tv_sec) * 1000000 + time.tv_usec; }

long long resident_bytes() {
  long pages_total = 0;
  long pages_resident = 0;
  FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr) return -1;
  const int fields = std::fscanf(statm, "%ld %ld", &pages_total, &pages_resident);
  std::fclose(statm);
  return fields == 2 ? pages_resident * sysconf(_SC_PAGESIZE) : -1;
}

std::string stats_line(const std::function<std::string()>& extra_stats) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const struct mallinfo2 heap = mallinfo2();
  std::string line = absl::StrCat("stats user_us=", micros(usage.ru_utime), " sys_us=", micros(usage.ru_stime),
                                  " rss_bytes=", resident_bytes(), " heap_bytes=", heap.uordblks + heap.hblkhd);
  if (extra_stats) absl::StrAppend(&line, " ", extra_stats());
  return line + "\n";
}

}  // namespace

void pin_current_thread(int cpu) {
  if (cpu < 0 || static_cast<unsigned>(cpu) >= std::thread::hardware_concurrency()) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

void start_control_thread(std::function<std::string()> extra_stats) {
  // Unpinned on purpose: it sleeps in read() and wakes only between measurements.
  std::thread([extra_stats = std::move(extra_stats)] {
    char line[64];
    while (std::fgets(line, sizeof(line), stdin) != nullptr) {
      if (std::strncmp(line, "stats", 5) != 0) continue;
      const std::string reply = stats_line(extra_stats);
      std::fwrite(reply.data(), 1, reply.size(), stdout);
      std::fflush(stdout);
    }
    _exit(0);  // stdin closed: the harness is done with this server (or died)
  }).detach();
}

void announce_port(std::uint16_t port) {
  std::printf("port %u\n", static_cast<unsigned>(port));
  std::fflush(stdout);
}

void die(const char* program, const char* what, int code) {
  std::fprintf(stderr, "%s: %s: %s\n", program, what, std::strerror(code));
  std::exit(1);
}

}  // namespace surge::bench
