// server_process.h: starts one of the bench/servers programs as a child process and talks to it over the
// protocol in bench/servers/server_common.h (its "port N" line, "stats" requests, exit when stdin closes).
//
//   auto server = ServerProcess::start({"bench/servers/raw_uring_echo_server", "--cpu=0"});
//   auto before = server->stats();     // {"user_us": ..., "sys_us": ..., "syscalls": ...}
//   ... load on 127.0.0.1:server->port() ...
//   auto after = server->stats();
#ifndef SURGE_BENCH_SERVER_PROCESS_H_
#define SURGE_BENCH_SERVER_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/result.h"

namespace surge::bench {

// One "stats" answer: key -> value (user_us, sys_us, rss_bytes, heap_bytes, and optional syscalls, allocs).
using ServerStats = std::map<std::string, double>;

class ServerProcess {
 public:
  // Starts `argv` (argv[0] is a path) and waits up to 10 s for its "port N" line.
  static Result<std::unique_ptr<ServerProcess>> start(const std::vector<std::string>& argv);

  // Closes the server's stdin (it exits), and waits for it; kills it if it has not gone within 2 s.
  ~ServerProcess();

  std::uint16_t port() const noexcept { return port_; }

  // Asks for and parses one stats line (waits up to 5 s).
  Result<ServerStats> stats();

 private:
  ServerProcess() = default;
  Result<std::string> read_line(int timeout_ms);

  std::string name_;
  pid_t pid_ = -1;
  int to_server_ = -1;    // the server's stdin
  int from_server_ = -1;  // the server's stdout
  std::string pending_;   // bytes read past the last line
  std::uint16_t port_ = 0;
};

}  // namespace surge::bench

#endif  // SURGE_BENCH_SERVER_PROCESS_H_
