// echo_compare: the backend and peer comparison (the README's main job). Starts each echo server under
// bench/servers as its own process pinned to CPU 0, drives it from this process on CPU 1 with one surge
// worker (load_generator.h), and reports Google Benchmark results whose counters bench/report.py turns
// into a table and a plot.
//
// Cells run interleaved: round 1 of every cell for every server, then round 2, ..., so that a slow
// stretch of this noisy 2-core machine hits every server alike and ratios can be taken pair by pair.
// Within a round the servers' order is shuffled (seeded, so a run can be repeated): a slow stretch that
// lasts a few cells then lands on different servers in different rounds instead of the same ones.
//
//   bazel run //bench:echo_compare -- [--rounds=7] [--window_ms=700] [--warmup_ms=200]
//       [--servers=surge_io_uring,surge_epoll,raw_uring,asio_epoll,asio_io_uring,libuv,tokio,
//                  surge_io_uring+borrowed,surge_io_uring-defer,...]
//       [--workloads=echo,stream,idle,udp] [--connections=1,64,512] [--sizes=64,4096]
//       [--idle_connections=10000] [--tokio_server=PATH] [--benchmark_out=results.json ...]
//       [--before_server=PATH]
//       [--udp_servers=surge_io_uring,surge_epoll,raw_uring,asio_epoll] [--udp_in_flight=1,32]
//       [--udp_sizes=64,1400] [--udp_rounds=5] [--udp_window_ms=500] [--udp_warmup_ms=100]
//
// udp: UDP echo, closed loop with N datagrams in flight from one socket on CPU 1 (udp_load.h; plain
// sendmmsg/recvmmsg, so that the client is not the bottleneck: its CPU share is reported), against each
// server's --udp mode (raw_uring: raw_uring_udp_echo_server). Its own rounds (--udp_rounds, at most
// --rounds) keep it within its share of ./run.sh bench.
//
// --before_server: a surge_echo_server built from an earlier commit. Servers named before_<variant>
// (before_io_uring, before_io_uring+borrowed, before_epoll, ...) run it with <variant>'s flags, so that a
// change is measured against what it changed, interleaved in the same run.
//
// Benchmark names: echo/<server>/conns:<n>/bytes:<n>/round:<r>, stream/<server>/bytes:<n>/round:<r>,
// idle/<server>/conns:<n>, udp/<server>/inflight:<n>/bytes:<n>/round:<r>. Time is the measured window
// (manual time, wall clock).
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/benchmark_flags.h"
#include "bench/load_generator.h"
#include "bench/server_process.h"
#include "bench/servers/server_common.h"
#include "bench/udp_load.h"
#include "flags/parse.h"
#include "runtime/worker.h"

namespace surge::bench {

// A comma-separated list of whole numbers from 1 to 2^26, as --connections, --sizes and --stream_sizes
// take; anything else is a parse error that names the flag.
struct CountList {
  std::vector<int> values;
};

bool AbslParseFlag(absl::string_view text, CountList* list, std::string* error) {
  list->values.clear();
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int value = 0;
    if (!absl::SimpleAtoi(part, &value) || value < 1 || value > (1 << 26)) {
      *error = absl::StrCat("'", part, "' is not a whole number from 1 to 2^26");
      return false;
    }
    list->values.push_back(value);
  }
  return true;
}

std::string AbslUnparseFlag(const CountList& list) { return absl::StrJoin(list.values, ","); }

}  // namespace surge::bench

ABSL_FLAG(int, rounds, 7, "rounds of every cell, interleaved across the servers, 1 to 1000");
ABSL_FLAG(int, window_ms, 700, "measured window of each echo or stream cell, in ms, 1 to 600000");
ABSL_FLAG(int, warmup_ms, 200, "load before each window that is not measured, in ms, 0 to 600000");
ABSL_FLAG(std::vector<std::string>, servers,
          std::vector<std::string>({"surge_io_uring", "surge_epoll", "raw_uring", "asio_epoll", "asio_io_uring",
                                    "libuv", "tokio", "surge_io_uring+borrowed", "surge_io_uring-defer"}),
          "servers to compare: surge_io_uring, surge_epoll, raw_uring, asio_epoll, asio_io_uring, libuv, tokio, "
          "the surge_* variants of kVariants in echo_compare.cc, and before_<variant> with --before_server");
ABSL_FLAG(std::vector<std::string>, workloads, std::vector<std::string>({"echo", "stream", "idle", "udp"}),
          "workloads: echo (closed-loop round trips), stream (one connection streaming), idle (memory per "
          "idle connection), udp (closed-loop UDP echo)");
ABSL_FLAG(std::vector<std::string>, udp_servers,
          std::vector<std::string>({"surge_io_uring", "surge_io_uring+borrowed", "surge_epoll", "raw_uring",
                                    "asio_epoll"}),
          "servers of the udp cells: surge_* variants (their --udp mode), raw_uring (raw_uring_udp_echo_server), "
          "asio_epoll, asio_io_uring");
ABSL_FLAG(surge::bench::CountList, udp_in_flight, (surge::bench::CountList{{1, 32}}),
          "datagrams in flight of the udp cells (at most 1024)");
ABSL_FLAG(surge::bench::CountList, udp_sizes, (surge::bench::CountList{{64, 1400}}),
          "datagram sizes of the udp cells, bytes (at least 8, at most 65507)");
ABSL_FLAG(int, udp_rounds, 5, "rounds of the udp cells, 1 to 1000 (at most --rounds)");
ABSL_FLAG(int, udp_window_ms, 500, "measured window of each udp cell, in ms, 1 to 600000 (at most --window_ms)");
ABSL_FLAG(int, udp_warmup_ms, 100, "warm-up of each udp cell, in ms, 0 to 600000 (at most --warmup_ms)");
ABSL_FLAG(surge::bench::CountList, connections, (surge::bench::CountList{{1, 64, 512}}),
          "connections of the echo cells");
ABSL_FLAG(surge::bench::CountList, sizes, (surge::bench::CountList{{64, 4096}}), "message sizes of the echo cells, bytes");
ABSL_FLAG(surge::bench::CountList, stream_sizes, (surge::bench::CountList{{65536, 1048576}}),
          "write sizes of the stream cells, bytes");
ABSL_FLAG(int, idle_connections, 10000, "connections of the idle cell, 1 to 100000");
ABSL_FLAG(std::string, tokio_server, "",
          "path of the Tokio server (bench/build_tokio_peer.sh builds it); without it, tokio is skipped");
ABSL_FLAG(std::string, before_server, "",
          "path of a surge_echo_server built from an earlier commit, for the before_<variant> servers");

namespace surge::bench {
namespace {

struct Settings {
  int rounds = 5;
  std::chrono::milliseconds window{1000};
  std::chrono::milliseconds warmup{200};
  std::vector<std::string> servers;
  std::vector<std::string> workloads;
  std::vector<int> connections;
  std::vector<int> sizes;
  std::vector<int> stream_sizes;
  int idle_connections = 10000;
  std::string tokio_server;
  std::string before_server;      // --before_server: an earlier build of surge_echo_server
  std::string servers_directory;  // where the bench/servers binaries are
  std::vector<std::string> udp_servers;
  std::vector<int> udp_in_flight;
  std::vector<int> udp_sizes;
  int udp_rounds = 5;
  std::chrono::milliseconds udp_window{500};
  std::chrono::milliseconds udp_warmup{100};
};

Settings settings;

// A list flag's items without the empty ones ("a,,b" and "a,b," are "a,b").
std::vector<std::string> non_empty(std::vector<std::string> items) {
  std::erase(items, std::string());
  return items;
}

// The command line that starts `server`, or an error saying why it cannot run here.
Result<std::vector<std::string>> server_command(const std::string& server, int buffer_size) {
  const std::string& dir = settings.servers_directory;
  std::vector<std::string> command;
  const bool before = server.rfind("before_", 0) == 0;
  if (server.rfind("surge_", 0) == 0 || before) {
    // surge_io_uring, surge_epoll, and variants that switch one feature: surge_io_uring+borrowed
    // (multishot recv into the buffer ring), surge_io_uring-defer (no DEFER_TASKRUN), ...
    static const std::map<std::string, std::vector<std::string>> kVariants = {
        {"surge_io_uring", {"--backend=io_uring"}},
        {"surge_epoll", {"--backend=epoll"}},
        {"surge_io_uring+borrowed", {"--backend=io_uring", "--borrowed_reads=1"}},
        {"surge_io_uring+borrowed-ring", {"--backend=io_uring", "--borrowed_reads=1", "--buffer_ring=0"}},
        {"surge_io_uring+borrowed64k", {"--backend=io_uring", "--borrowed_reads=1", "--lent_buffer_size=65536"}},
        {"surge_io_uring+borrowed-q8", {"--backend=io_uring", "--borrowed_reads=1", "--lent_buffers_per_stream=8"}},
        {"surge_io_uring+borrowed-q32", {"--backend=io_uring", "--borrowed_reads=1", "--lent_buffers_per_stream=32"}},
        {"surge_io_uring+borrowed-q64", {"--backend=io_uring", "--borrowed_reads=1", "--lent_buffers_per_stream=64"}},
        {"surge_io_uring+borrowed-q128", {"--backend=io_uring", "--borrowed_reads=1", "--lent_buffers_per_stream=128"}},
        {"surge_io_uring+borrowed-qmax", {"--backend=io_uring", "--borrowed_reads=1", "--lent_buffers_per_stream=32768"}},
        {"surge_io_uring-defer", {"--backend=io_uring", "--defer_taskrun=0"}},
        {"surge_io_uring-multishot_accept", {"--backend=io_uring", "--multishot_accept=0"}},
        {"surge_io_uring-fixed_files", {"--backend=io_uring", "--fixed_files=0"}},
        {"surge_io_uring+send_zc", {"--backend=io_uring", "--send_zc_threshold=16384"}},
        {"surge_io_uring+sqpoll", {"--backend=io_uring", "--sqpoll=1"}},
        {"surge_epoll+borrowed", {"--backend=epoll", "--borrowed_reads=1"}},
        // UDP only: how many receive-and-send loops share the socket (serve_udp_echo: 64 borrowed, 16 copying).
        {"surge_io_uring+borrowed+loops4", {"--backend=io_uring", "--borrowed_reads=1", "--udp_loops=4"}},
        {"surge_io_uring+borrowed+loops16", {"--backend=io_uring", "--borrowed_reads=1", "--udp_loops=16"}},
        {"surge_io_uring+loops1", {"--backend=io_uring", "--udp_loops=1"}},
    };
    auto variant = kVariants.find(before ? "surge_" + server.substr(7) : server);
    if (variant == kVariants.end()) return Error(EINVAL, "unknown surge variant (see kVariants in echo_compare.cc)");
    if (before && settings.before_server.empty()) return Error(EINVAL, "before_* servers need --before_server=PATH");
    command = {before ? settings.before_server : dir + "/surge_echo_server"};
    command.insert(command.end(), variant->second.begin(), variant->second.end());
  } else if (server == "raw_uring") {
    command = {dir + "/raw_uring_echo_server"};
  } else if (server == "asio_epoll") {
    command = {dir + "/asio_epoll_echo_server"};
  } else if (server == "asio_io_uring") {
    command = {dir + "/asio_io_uring_echo_server"};
  } else if (server == "libuv") {
    command = {dir + "/libuv_echo_server"};
  } else if (server == "tokio") {
    if (settings.tokio_server.empty()) {
      return Error(ENOENT, "no --tokio_server given (bench/build_tokio_peer.sh builds it where cargo and "
                           "librust-tokio-dev are installed)");
    }
    command = {settings.tokio_server};
  } else {
    return Error(EINVAL, "unknown server name (see --servers in echo_compare.cc)");
  }
  command.push_back(std::thread::hardware_concurrency() >= 2 ? "--cpu=0" : "--cpu=-1");
  command.push_back(absl::StrCat("--buffer=", buffer_size));
  return command;
}

// The command line of `server`'s UDP echo mode.
Result<std::vector<std::string>> udp_server_command(const std::string& server) {
  auto command = server_command(server, 64 * 1024);
  if (!command) return command.error();
  if (server == "raw_uring") {
    (*command)[0] = settings.servers_directory + "/raw_uring_udp_echo_server";
  } else if (server.rfind("surge_", 0) == 0 || server.rfind("before_", 0) == 0 || server.rfind("asio_", 0) == 0) {
    command->push_back("--udp");
  } else {
    return Error(EINVAL, "this server has no UDP mode (udp servers: surge_*, raw_uring, asio_*)");
  }
  return command;
}

// Long-lived servers for the echo and stream cells, started on first use.
std::map<std::string, std::unique_ptr<ServerProcess>> running_servers;
std::map<std::string, Error> failed_servers;

Result<ServerProcess*> shared_server(const std::string& server) {
  if (auto it = running_servers.find(server); it != running_servers.end()) return it->second.get();
  if (auto it = failed_servers.find(server); it != failed_servers.end()) return it->second;
  // "udp:<server>" is <server>'s UDP echo mode.
  auto command = server.rfind("udp:", 0) == 0 ? udp_server_command(server.substr(4)) : server_command(server, 64 * 1024);
  auto process = command ? ServerProcess::start(*command) : Result<std::unique_ptr<ServerProcess>>(command.error());
  if (!process) {
    failed_servers.emplace(server, process.error());
    return process.error();
  }
  ServerProcess* raw = process->get();
  running_servers.emplace(server, std::move(*process));
  return raw;
}

// The load generator's worker, on this (the benchmark's) thread. Recreated if a window had to be
// abandoned (block_on_for shuts the worker down).
std::unique_ptr<Worker> client;

Worker& client_worker() {
  if (!client) {
    auto worker = Worker::create({.backend = BackendChoice::kIoUring});
    if (!worker) worker = Worker::create({.backend = BackendChoice::kEpoll});
    if (!worker) {
      std::fprintf(stderr, "echo_compare: cannot create the client worker: %s\n", worker.error().message().c_str());
      std::exit(1);
    }
    client = std::move(*worker);
  }
  return *client;
}

template <typename T>
Result<T> run_on_client(Task<Result<T>> task, std::chrono::seconds limit) {
  auto outcome = client_worker().block_on_for(std::move(task), limit);
  if (!outcome) {
    client.reset();
    return Error(ETIMEDOUT, "the load did not finish in time");
  }
  return std::move(*outcome);
}

double stat_or(const ServerStats& stats, const std::string& key, double fallback) {
  auto it = stats.find(key);
  return it == stats.end() ? fallback : it->second;
}

// Server-side counters over the window, per unit of work (round trip or byte).
void report_server_counters(benchmark::State& state, const ServerStats& before, const ServerStats& after,
                            double units, const char* per) {
  const double user = stat_or(after, "user_us", 0) - stat_or(before, "user_us", 0);
  const double sys = stat_or(after, "sys_us", 0) - stat_or(before, "sys_us", 0);
  const std::string suffix = std::string("_per_") + per;
  state.counters["server_cpu_us" + suffix] = (user + sys) / units;
  state.counters["server_user_us" + suffix] = user / units;
  state.counters["server_sys_us" + suffix] = sys / units;
  state.counters["server_user_share"] = user + sys > 0 ? user / (user + sys) : 0;
  if (before.count("syscalls") != 0) {
    state.counters["server_syscalls" + suffix] = (after.at("syscalls") - before.at("syscalls")) / units;
  }
  if (before.count("allocs") != 0) {
    state.counters["server_allocs" + suffix] = (after.at("allocs") - before.at("allocs")) / units;
  }
}

// Runs one window against `server` with snapshots of its stats at the window's edges.
void run_window(benchmark::State& state, const std::string& server, int connections, int size, bool stream) {
  auto process = shared_server(server);
  if (!process) {
    state.SkipWithError(absl::StrCat(server, ": ", process.error().message()).c_str());
    return;
  }
  ServerStats before;
  ServerStats after;
  std::optional<Error> stats_error;
  WindowOptions options{.address = SocketAddress::ipv4_loopback((*process)->port()),
                        .connections = connections,
                        .message_size = static_cast<std::size_t>(size),
                        .warmup = settings.warmup,
                        .window = settings.window};
  auto snapshot = [&](ServerStats* into) {
    auto stats = (*process)->stats();
    if (stats) *into = std::move(*stats);
    else if (!stats_error) stats_error = stats.error();
  };
  options.at_window_start = [&] { snapshot(&before); };
  options.at_window_end = [&] { snapshot(&after); };
  for (auto _ : state) {
    auto result = run_on_client(stream ? run_stream_window(options) : run_echo_window(options),
                                std::chrono::seconds(60));
    if (!result || stats_error) {
      state.SkipWithError((result ? stats_error->message() : result.error().message()).c_str());
      return;
    }
    const double seconds = std::chrono::duration<double>(result->elapsed).count();
    state.SetIterationTime(seconds);
    state.counters["bytes_per_s"] = static_cast<double>(result->bytes_echoed) / seconds;
    if (stream) {
      report_server_counters(state, before, after, static_cast<double>(result->bytes_echoed) / (1 << 20), "mib");
      continue;
    }
    const double round_trips = static_cast<double>(result->round_trips);
    state.counters["rt_per_s"] = round_trips / seconds;
    state.counters["p50_us"] = static_cast<double>(result->latencies->quantile(0.50).count()) / 1e3;
    state.counters["p99_us"] = static_cast<double>(result->latencies->quantile(0.99).count()) / 1e3;
    report_server_counters(state, before, after, round_trips, "rt");
  }
}

// One UDP echo window against `server`'s UDP mode, on this thread (udp_load.h).
void run_udp_window(benchmark::State& state, const std::string& server, int in_flight, int size) {
  auto process = shared_server("udp:" + server);
  if (!process) {
    state.SkipWithError(absl::StrCat(server, ": ", process.error().message()).c_str());
    return;
  }
  ServerStats before;
  ServerStats after;
  std::optional<Error> stats_error;
  auto snapshot = [&](ServerStats* into) {
    auto stats = (*process)->stats();
    if (stats) *into = std::move(*stats);
    else if (!stats_error) stats_error = stats.error();
  };
  UdpWindowOptions options{.address = SocketAddress::ipv4_loopback((*process)->port()),
                           .in_flight = in_flight,
                           .datagram_size = static_cast<std::size_t>(size),
                           .warmup = settings.udp_warmup,
                           .window = settings.udp_window,
                           .at_window_start = [&] { snapshot(&before); },
                           .at_window_end = [&] { snapshot(&after); }};
  for (auto _ : state) {
    auto result = run_udp_echo_window(options);
    if (!result || stats_error) {
      state.SkipWithError((result ? stats_error->message() : result.error().message()).c_str());
      return;
    }
    const double seconds = std::chrono::duration<double>(result->elapsed).count();
    const double datagrams = static_cast<double>(result->datagrams);
    state.SetIterationTime(seconds);
    state.counters["dgrams_per_s"] = datagrams / seconds;
    state.counters["bytes_per_s"] = datagrams * size / seconds;
    state.counters["p50_us"] = static_cast<double>(result->latencies->quantile(0.50).count()) / 1e3;
    state.counters["p99_us"] = static_cast<double>(result->latencies->quantile(0.99).count()) / 1e3;
    state.counters["lost"] = static_cast<double>(result->lost);
    state.counters["corrupt"] = static_cast<double>(result->corrupt);
    state.counters["client_cpu_share"] = std::chrono::duration<double>(result->client_cpu).count() / seconds;
    if (result->corrupt > 0) {
      state.SkipWithError(absl::StrCat(server, ": ", result->corrupt, " echoes differed from what was sent").c_str());
      return;
    }
    report_server_counters(state, before, after, datagrams, "dgram");
  }
}

// Memory per idle connection, on a fresh server process (so that memory freed by earlier cells does not
// hide the growth). Runtime state: malloc's bytes in use, minus the server's per-connection buffer (a
// server that reads into lent buffers has none: all of its growth counts, its lent buffers included).
void run_idle(benchmark::State& state, const std::string& server, int connections) {
  constexpr int kBufferSize = 4096;
  const int buffer_per_connection = server.find("+borrowed") == std::string::npos ? kBufferSize : 0;
  auto command = server_command(server, kBufferSize);
  auto process = command ? ServerProcess::start(*command) : Result<std::unique_ptr<ServerProcess>>(command.error());
  if (!process) {
    state.SkipWithError(absl::StrCat(server, ": ", process.error().message()).c_str());
    return;
  }
  for (auto _ : state) {
    auto before = (*process)->stats();
    const auto start = std::chrono::steady_clock::now();
    auto streams = run_on_client(open_idle_connections(SocketAddress::ipv4_loopback((*process)->port()), connections),
                                 std::chrono::seconds(120));
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (!streams) {
      state.SkipWithError(streams.error().message().c_str());
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let the server settle
    auto after = (*process)->stats();
    if (!before || !after) {
      state.SkipWithError((!before ? before : after).error().message().c_str());
      return;
    }
    const double count = static_cast<double>(connections);
    state.counters["rss_bytes_per_conn"] = (after->at("rss_bytes") - before->at("rss_bytes")) / count;
    state.counters["heap_bytes_per_conn"] = (after->at("heap_bytes") - before->at("heap_bytes")) / count;
    state.counters["runtime_bytes_per_conn"] = state.counters["heap_bytes_per_conn"] - buffer_per_connection;
    state.counters["buffer_bytes"] = buffer_per_connection;
    client_worker().block_on([](std::vector<TcpStream> open) -> Task<void> {
      for (auto& stream : open) (void)stream.close();
      co_return;
    }(std::move(*streams)));
  }
}

void register_benchmarks() {
  auto has = [](const std::vector<std::string>& list, const std::string& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
  };
  std::mt19937 shuffle_seed(20261124);
  for (int round = 1; round <= settings.rounds; ++round) {
    if (has(settings.workloads, "echo")) {
      for (int connections : settings.connections) {
        for (int size : settings.sizes) {
          std::vector<std::string> servers = settings.servers;
          std::shuffle(servers.begin(), servers.end(), shuffle_seed);
          for (const auto& server : servers) {
            const std::string name =
                absl::StrCat("echo/", server, "/conns:", connections, "/bytes:", size, "/round:", round);
            benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
              run_window(state, server, connections, size, false);
            })->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
          }
        }
      }
    }
    if (has(settings.workloads, "stream")) {
      for (int size : settings.stream_sizes) {
        std::vector<std::string> servers = settings.servers;
        std::shuffle(servers.begin(), servers.end(), shuffle_seed);
        for (const auto& server : servers) {
          const std::string name = absl::StrCat("stream/", server, "/bytes:", size, "/round:", round);
          benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
            run_window(state, server, 1, size, true);
          })->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
        }
      }
    }
  }
  if (has(settings.workloads, "udp")) {
    for (int round = 1; round <= std::min(settings.udp_rounds, settings.rounds); ++round) {
      for (int in_flight : settings.udp_in_flight) {
        for (int size : settings.udp_sizes) {
          std::vector<std::string> servers = settings.udp_servers;
          std::shuffle(servers.begin(), servers.end(), shuffle_seed);
          for (const auto& server : servers) {
            const std::string name =
                absl::StrCat("udp/", server, "/inflight:", in_flight, "/bytes:", size, "/round:", round);
            benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
              run_udp_window(state, server, in_flight, size);
            })->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
          }
        }
      }
    }
  }
  if (has(settings.workloads, "idle")) {
    for (const auto& server : settings.servers) {
      const int connections = settings.idle_connections;
      const std::string name = absl::StrCat("idle/", server, "/conns:", connections);
      benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
        run_idle(state, server, connections);
      })->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
    }
  }
}

// The directory holding the server binaries: next to this binary's runfiles when run directly, or under
// the working directory when run by `bazel run` (which starts it in its runfiles tree).
std::string find_servers_directory(const char* argv0) {
  const std::string beside = std::string(argv0) + ".runfiles/surge/bench/servers";
  if (access((beside + "/raw_uring_echo_server").c_str(), X_OK) == 0) return beside;
  return "bench/servers";
}

int main_impl(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);  // a server that died must show up as an error, not kill the harness
  parse_benchmark_command_line(
      argc, argv,
      "the backend and peer comparison (./run.sh bench). Starts each echo server under bench/servers as its "
      "own process pinned to CPU 0, drives it from one surge worker on CPU 1, in rounds interleaved across "
      "the servers, and reports one Google Benchmark result per cell and round (echo/<server>/conns:<n>/"
      "bytes:<n>/round:<r>, stream/<server>/bytes:<n>/round:<r>, idle/<server>/conns:<n>, "
      "udp/<server>/inflight:<n>/bytes:<n>/round:<r>) whose counters "
      "bench/report.py turns into tables. Every Google Benchmark flag works too (--benchmark_filter=REGEX, "
      "--benchmark_out=FILE, --benchmark_out_format=json, ...).\n"
      "Usage: echo_compare [--rounds=7] [--window_ms=700] [--warmup_ms=200] [--servers=a,b,...] "
      "[--workloads=echo,stream,idle,udp] [--connections=1,64,512] [--sizes=64,4096] "
      "[--stream_sizes=65536,1048576] [--idle_connections=10000] [--tokio_server=PATH] [--before_server=PATH] "
      "[--udp_servers=a,b,...] [--udp_in_flight=1,32] [--udp_sizes=64,1400] [--udp_rounds=5] "
      "[--udp_window_ms=500] [--udp_warmup_ms=100] "
      "[--benchmark_...]");
  settings.rounds = flags::get_in_range(FLAGS_rounds, 1, 1000);
  settings.window = std::chrono::milliseconds(flags::get_in_range(FLAGS_window_ms, 1, 600000));
  settings.warmup = std::chrono::milliseconds(flags::get_in_range(FLAGS_warmup_ms, 0, 600000));
  settings.servers = non_empty(absl::GetFlag(FLAGS_servers));
  settings.workloads = non_empty(absl::GetFlag(FLAGS_workloads));
  settings.connections = absl::GetFlag(FLAGS_connections).values;
  settings.sizes = absl::GetFlag(FLAGS_sizes).values;
  settings.stream_sizes = absl::GetFlag(FLAGS_stream_sizes).values;
  settings.idle_connections = flags::get_in_range(FLAGS_idle_connections, 1, 100000);
  settings.tokio_server = absl::GetFlag(FLAGS_tokio_server);
  settings.before_server = absl::GetFlag(FLAGS_before_server);
  settings.servers_directory = find_servers_directory(argv[0]);
  settings.udp_servers = non_empty(absl::GetFlag(FLAGS_udp_servers));
  settings.udp_in_flight = absl::GetFlag(FLAGS_udp_in_flight).values;
  settings.udp_sizes = absl::GetFlag(FLAGS_udp_sizes).values;
  settings.udp_rounds = flags::get_in_range(FLAGS_udp_rounds, 1, 1000);
  settings.udp_window = std::min(settings.window, std::chrono::milliseconds(flags::get_in_range(FLAGS_udp_window_ms, 1, 600000)));
  settings.udp_warmup = std::min(settings.warmup, std::chrono::milliseconds(flags::get_in_range(FLAGS_udp_warmup_ms, 0, 600000)));
  for (int in_flight : settings.udp_in_flight) {
    if (in_flight > 1024) {
      std::fprintf(stderr, "echo_compare: --udp_in_flight: %d is more than 1024\n", in_flight);
      return 1;
    }
  }
  for (int size : settings.udp_sizes) {
    if (size < 8 || size > 65507) {
      std::fprintf(stderr, "echo_compare: --udp_sizes: %d is not from 8 to 65507\n", size);
      return 1;
    }
  }

  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
    if (files.rlim_cur < static_cast<rlim_t>(settings.idle_connections) + 100) {
      std::fprintf(stderr, "echo_compare: the fd limit (%llu) is below --idle_connections=%d\n",
                   static_cast<unsigned long long>(files.rlim_cur), settings.idle_connections);
      return 2;
    }
  }
  pin_current_thread(std::thread::hardware_concurrency() >= 2 ? 1 : -1);  // the server gets CPU 0
  register_benchmarks();
  benchmark::AddCustomContext("client", absl::StrCat("one surge worker, ", backend_name(client_worker().backend_kind()),
                                                    ", pinned to CPU 1; servers pinned to CPU 0"));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  running_servers.clear();
  client.reset();
  return 0;
}

}  // namespace
}  // namespace surge::bench

int main(int argc, char** argv) { return surge::bench::main_impl(argc, argv); }
