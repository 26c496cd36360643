// server_common.h: what every echo server under bench/servers/ shares, so that the comparison harness
// (bench/echo_compare) drives them all the same way, whatever library they are written with.
//
// The protocol, on the server's stdin and stdout:
//   server prints   "port N"            once it listens (it binds 127.0.0.1, --port=0 picks a free port)
//   harness writes  "stats"             server answers one line "stats key=value ...": user_us, sys_us
//                                       (getrusage of the whole process), rss_bytes, heap_bytes (malloc's
//                                       bytes in use), and whatever the server adds (syscalls=, allocs=)
//   harness closes stdin                server exits at once
//
//   int main(int argc, char** argv) {
//     const auto flags = surge::bench::parse_server_flags(argc, argv, kUsage);  // server_flags.h
//     surge::bench::pin_current_thread(flags.cpu);
//     ... listen ...
//     surge::bench::start_control_thread([] { return "syscalls=" + std::to_string(count); });
//     surge::bench::announce_port(port);
//     ... serve ...
//   }
//
// Every server uses a per-connection buffer of --buffer bytes, allocated when the connection is accepted
// and not zeroed, so that memory per connection compares like with like.
#ifndef SURGE_BENCH_SERVERS_SERVER_COMMON_H_
#define SURGE_BENCH_SERVERS_SERVER_COMMON_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace surge::bench {

// Pins the calling thread to `cpu` (no-op for -1 or when the machine has fewer CPUs).
void pin_current_thread(int cpu);

// Starts the thread that answers "stats" on stdin and exits the process when stdin closes. `extra_stats`
// runs on that thread, so it may only read what is safe to read from another thread (atomics).
void start_control_thread(std::function<std::string()> extra_stats = {});

// Prints "port N" and flushes, which tells the harness the server is ready.
void announce_port(std::uint16_t port);

// Exits with "program: what: strerror(code)" on stderr.
[[noreturn]] void die(const char* program, const char* what, int code);

}  // namespace surge::bench

#endif  // SURGE_BENCH_SERVERS_SERVER_COMMON_H_
