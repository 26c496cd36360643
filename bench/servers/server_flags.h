// server_flags.h: the flags every echo server under bench/servers/ takes (--port, --cpu, --buffer), as
// absl flags, and the command-line parsing of the peer servers. Depends on abseil only: the peers must not
// link the runtime they are compared with (nor any other surge library).
//
//   int main(int argc, char** argv) {
//     const surge::bench::ServerFlags flags = surge::bench::parse_server_flags(argc, argv,
//         "the libuv peer, ...\nUsage: libuv_echo_server [--port=0] [--cpu=-1] [--buffer=65536]");
//
// surge_echo_server, which has flags of its own, parses with //flags:parse instead and then calls
// server_flags().
#ifndef SURGE_BENCH_SERVERS_SERVER_FLAGS_H_
#define SURGE_BENCH_SERVERS_SERVER_FLAGS_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace surge::bench {

struct ServerFlags {
  std::uint16_t port = 0;              // --port, 0 = any free port
  int cpu = -1;                        // --cpu to pin the serving thread to, -1 = no pinning
  std::size_t buffer_size = 64 * 1024; // --buffer, bytes per connection
};

// Sets `usage` and parses the command line with absl: --help prints it with the flags and exits 0; an
// unknown flag, a bad or out-of-range value or a positional argument exits 1 with a message naming it.
// Then returns server_flags(). Call once, from main, before any other thread starts.
ServerFlags parse_server_flags(int argc, char** argv, absl::string_view usage);

// The flags above, once the command line is parsed; exits 1 with a message naming `program` and the flag
// when one is out of range. Also raises the open-file limit to its hard maximum (the idle-connection
// benchmark holds 10,000 connections).
ServerFlags server_flags(absl::string_view program);

}  // namespace surge::bench

#endif  // SURGE_BENCH_SERVERS_SERVER_FLAGS_H_
