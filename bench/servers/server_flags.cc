#include "bench/servers/server_flags.h"

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "flags/parse.h"

ABSL_FLAG(int, port, 0, "TCP port to listen on at 127.0.0.1, 0 to 65535 (0: any free port, printed as 'port N')");
ABSL_FLAG(int, cpu, -1, "CPU to pin the serving thread to, -1 to 1023 (-1: no pinning)");
ABSL_FLAG(int, buffer, 64 * 1024, "bytes of each connection's buffer, 1 to 2^26");

namespace surge::bench {

ServerFlags parse_server_flags(int argc, char** argv, absl::string_view usage) {
  flags::parse_command_line(argc, argv, usage);  // --help exits 0; unknown flags and stray arguments exit 1
  const absl::string_view invoked = argc > 0 ? argv[0] : "server";
  return server_flags(invoked.substr(invoked.rfind('/') + 1));
}

ServerFlags server_flags(absl::string_view program) {
  ServerFlags parsed;
  parsed.port = static_cast<std::uint16_t>(flags::get_in_range(FLAGS_port, 0, 65535));
  parsed.cpu = flags::get_in_range(FLAGS_cpu, -1, 1023);
  parsed.buffer_size = static_cast<std::size_t>(flags::get_in_range(FLAGS_buffer, 1, 1 << 26));
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &files) != 0) std::cerr << absl::StrCat(program, ": cannot raise the fd limit\n");
  }
  return parsed;
}

}  // namespace surge::bench
