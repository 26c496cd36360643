#include "bench/load_generator.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "bench/window.h"
#include "runtime/join_handle.h"
#include "runtime/time.h"
#include "runtime/when.h"
#include "runtime/worker.h"

namespace surge::bench {
namespace {

using Clock = std::chrono::steady_clock;


struct SharedWindow {
  Phase phase = Phase::kWarmup;
  WindowResult result;
};

Result<std::vector<TcpStream>> take_streams(std::vector<std::optional<TcpStream>>& slots) {
  std::vector<TcpStream> streams;
  streams.reserve(slots.size());
  for (auto& slot : slots) streams.push_back(std::move(*slot));
  return streams;
}

Task<Result<void>> connect_into(SocketAddress address, std::optional<TcpStream>* slot) {
  auto stream = co_await TcpStream::connect(address);
  if (!stream) co_return stream.error();
  (void)stream->set_nodelay(true);
  *slot = std::move(*stream);
  co_return ok();
}

// Connects `count` streams, `parallel` handshakes at a time.
Task<Result<std::vector<TcpStream>>> connect_all(SocketAddress address, int count, int parallel) {
  Worker* worker = Worker::current();
  std::vector<std::optional<TcpStream>> slots(static_cast<std::size_t>(count));
  for (int first = 0; first < count; first += parallel) {
    std::vector<JoinHandle<Result<void>>> batch;
    for (int i = first; i < std::min(count, first + parallel); ++i) {
      batch.push_back(worker->spawn(connect_into(address, &slots[static_cast<std::size_t>(i)])));
    }
    for (auto& handle : batch) {
      if (auto connected = co_await std::move(handle); !connected) co_return connected.error();
    }
  }
  co_return take_streams(slots);
}

Task<Result<void>> drive_echo(TcpStream* stream, std::size_t size, int index, SharedWindow* shared) {
  std::vector<unsigned char> message(size);
  std::vector<unsigned char> echoed(size);
  for (std::size_t i = 0; i < size; ++i) message[i] = static_cast<unsigned char>(i * 31 + static_cast<std::size_t>(index));
  for (unsigned round = 0; shared->phase != Phase::kStop; ++round) {
    message[0] = static_cast<unsigned char>(round);  // every round trip carries different bytes
    const auto start = Clock::now();
    if (auto sent = co_await stream->write_all(message); !sent) co_return sent.error();
    if (auto received = co_await stream->read_exact(echoed); !received) co_return received.error();
    if (shared->phase == Phase::kMeasure) {
      shared->result.latencies->record(Clock::now() - start);
      ++shared->result.round_trips;
      shared->result.bytes_echoed += size;
    }
    if (std::memcmp(message.data(), echoed.data(), size) != 0) {
      co_return Error(EBADMSG, "echo load: the echoed bytes differ from the bytes sent");
    }
  }
  co_return ok();
}

struct StreamProgress {
  std::uint64_t sent = 0;
  bool writer_done = false;
};

Task<Result<void>> write_stream(TcpStream* stream, std::size_t chunk, SharedWindow* shared,
                                StreamProgress* progress) {
  std::vector<unsigned char> data(chunk, 0x5a);
  while (shared->phase != Phase::kStop) {
    if (auto written = co_await stream->write_all(data); !written) co_return written.error();
    progress->sent += chunk;
  }
  progress->writer_done = true;
  co_return ok();
}

Task<Result<void>> read_stream(TcpStream* stream, SharedWindow* shared, const StreamProgress* progress) {
  std::vector<unsigned char> buffer(256 * 1024);
  std::uint64_t received = 0;
  // Until the writer has stopped and everything it sent has come back (a reader that quit early would
  // leave the writer blocked on a full socket).
  while (!progress->writer_done || received < progress->sent) {
    auto got = co_await stream->read(MutableBuffer(buffer.data(), buffer.size()));
    if (!got) co_return got.error();
    if (*got == 0) co_return Error(ECONNRESET, "stream load: the server closed the connection");
    received += *got;
    if (shared->phase == Phase::kMeasure) shared->result.bytes_echoed += *got;
  }
  co_return ok();
}

}  // namespace

Task<Result<WindowResult>> run_echo_window(WindowOptions options) {
  auto streams = co_await connect_all(options.address, options.connections, 256);
  if (!streams) co_return streams.error();
  SharedWindow shared;
  std::vector<JoinHandle<Result<void>>> drivers;
  for (std::size_t i = 0; i < streams->size(); ++i) {
    drivers.push_back(Worker::current()->spawn(
        drive_echo(&(*streams)[i], options.message_size, static_cast<int>(i), &shared)));
  }
  if (auto finished = co_await bench::run_window(options, shared, drivers); !finished) co_return finished.error();
  co_return std::move(shared.result);
}

Task<Result<WindowResult>> run_stream_window(WindowOptions options) {
  auto streams = co_await connect_all(options.address, 1, 1);
  if (!streams) co_return streams.error();
  SharedWindow shared;
  StreamProgress progress;
  std::vector<JoinHandle<Result<void>>> drivers;
  TcpStream* stream = &streams->front();
  drivers.push_back(Worker::current()->spawn(write_stream(stream, options.message_size, &shared, &progress)));
  drivers.push_back(Worker::current()->spawn(read_stream(stream, &shared, &progress)));
  if (auto finished = co_await bench::run_window(options, shared, drivers); !finished) co_return finished.error();
  co_return std::move(shared.result);
}

Task<Result<std::vector<TcpStream>>> open_idle_connections(SocketAddress address, int count) {
  auto streams = co_await connect_all(address, count, 256);
  if (!streams) co_return streams.error();
  unsigned char message[64] = {1, 2, 3};
  unsigned char echoed[64];
  for (auto& stream : *streams) {  // one at a time: the point is the idle state afterwards, not speed
    if (auto sent = co_await stream.write_all(ConstBuffer(message, sizeof(message))); !sent) co_return sent.error();
    if (auto got = co_await stream.read_exact(MutableBuffer(echoed, sizeof(echoed))); !got) co_return got.error();
  }
  co_return std::move(*streams);
}

}  // namespace surge::bench
