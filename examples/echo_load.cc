#include "examples/echo_load.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "net/tcp_stream.h"
#include "net/unix_stream.h"
#include "runtime/join_handle.h"
#include "runtime/worker.h"

namespace surge::examples {
namespace {

using Clock = std::chrono::steady_clock;

template <typename Stream>
Task<Result<void>> round_trips(Stream& stream, EchoLoadOptions options, int connection_index,
                               std::vector<std::chrono::nanoseconds>* latencies) {
  std::vector<unsigned char> message(options.message_size);
  std::vector<unsigned char> echoed(options.message_size);
  for (std::size_t i = 0; i < message.size(); ++i) {
    message[i] = static_cast<unsigned char>(i * 31 + static_cast<std::size_t>(connection_index));
  }
  for (int round = 0; round < options.round_trips_per_connection; ++round) {
    message[0] = static_cast<unsigned char>(round);  // every round trip carries different bytes
    const auto start = Clock::now();
    if (auto sent = co_await stream.write_all(message); !sent) co_return sent.error();
    if (auto received = co_await stream.read_exact(echoed); !received) co_return received.error();
    latencies->push_back(Clock::now() - start);
    if (std::memcmp(message.data(), echoed.data(), message.size()) != 0) {
      co_return Error(EBADMSG, "echo load: the echoed bytes differ from the bytes sent");
    }
  }
  co_return ok();
}

Task<Result<void>> drive_connection(EchoLoadOptions options, int connection_index,
                                    std::vector<std::chrono::nanoseconds>* latencies) {
  if (options.unix_address) {
    auto stream = co_await UnixStream::connect(*options.unix_address);
    if (!stream) co_return stream.error();
    co_return co_await round_trips(*stream, options, connection_index, latencies);
  }
  auto stream = co_await TcpStream::connect(options.address);
  if (!stream) co_return stream.error();
  (void)stream->set_nodelay(true);
  co_return co_await round_trips(*stream, options, connection_index, latencies);
}

}  // namespace

double EchoLoadStats::round_trips_per_second() const {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  return seconds > 0 ? static_cast<double>(round_trips) / seconds : 0.0;
}

std::chrono::nanoseconds EchoLoadStats::latency_quantile(double q) {
  if (latencies.empty()) return std::chrono::nanoseconds::zero();
  std::sort(latencies.begin(), latencies.end());
  const auto index = static_cast<std::size_t>(q * static_cast<double>(latencies.size() - 1) + 0.5);
  return latencies[std::min(index, latencies.size() - 1)];
}

Task<Result<EchoLoadStats>> run_echo_load(EchoLoadOptions options) {
  Worker* worker = Worker::current();
  EchoLoadStats stats;
  std::vector<std::vector<std::chrono::nanoseconds>> per_connection(static_cast<std::size_t>(options.connections));
  std::vector<JoinHandle<Result<void>>> connections;
  const auto start = Clock::now();
  for (int i = 0; i < options.connections; ++i) {
    auto& latencies = per_connection[static_cast<std::size_t>(i)];
    latencies.reserve(static_cast<std::size_t>(options.round_trips_per_connection));
    connections.push_back(worker->spawn(drive_connection(options, i, &latencies)));
  }
  std::optional<Error> first_error;
  for (auto& connection : connections) {
    auto outcome = co_await std::move(connection);
    if (!outcome && !first_error) first_error = outcome.error();
  }
  stats.elapsed = Clock::now() - start;
  if (first_error) co_return *first_error;
  for (auto& latencies : per_connection) {
    stats.latencies.insert(stats.latencies.end(), latencies.begin(), latencies.end());
  }
  stats.round_trips = stats.latencies.size();
  stats.bytes = stats.round_trips * options.message_size * 2;
  co_return stats;
}

}  // namespace surge::examples
