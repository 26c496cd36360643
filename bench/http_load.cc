#include "bench/http_load.h"

#include <string.h>

#include <algorithm>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "net/borrowed_buffer.h"
#include "net/tcp_stream.h"
#include "bench/window.h"
#include "runtime/join_handle.h"
#include "runtime/time.h"
#include "runtime/when.h"
#include "runtime/worker.h"

namespace surge::bench {
namespace {

using Clock = std::chrono::steady_clock;

bool equals_ignoring_case(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

bool contains_token_ignoring_case(std::string_view value, std::string_view lower) {
  for (std::size_t start = 0; start + lower.size() <= value.size(); ++start) {
    if (equals_ignoring_case(value.substr(start, lower.size()), lower)) return true;
  }
  return false;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

ScanStatus scan_response_head(std::string_view bytes, ResponseHead* head, const char** error) {
  const void* end_of_head = memmem(bytes.data(), bytes.size(), "\r\n\r\n", 4);
  if (end_of_head == nullptr) {
    // Refuse early what can never become a response, rather than waiting for a buffer's worth of it.
    constexpr std::string_view kPrefix = "HTTP/1.";
    if (bytes.substr(0, std::min(bytes.size(), kPrefix.size())) != kPrefix.substr(0, std::min(bytes.size(), kPrefix.size()))) {
      *error = "the response does not start with HTTP/1.";
      return ScanStatus::kMalformed;
    }
    return ScanStatus::kNeedMore;
  }
  const auto head_size = static_cast<std::size_t>(static_cast<const char*>(end_of_head) - bytes.data()) + 4;
  std::string_view text = bytes.substr(0, head_size - 2);  // every line, each ending in CRLF
  const std::size_t status_end = text.find("\r\n");
  const std::string_view status_line = text.substr(0, status_end);
  // "HTTP/1.1 200 OK": version, a space, three digits, then a space or the end of the line.
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." ||
      (status_line[7] != '0' && status_line[7] != '1') || status_line[8] != ' ' ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    *error = "malformed status line";
    return ScanStatus::kMalformed;
  }
  int status = 0;
  for (int i = 9; i < 12; ++i) {
    const char digit = status_line[static_cast<std::size_t>(i)];
    if (digit < '0' || digit > '9') {
      *error = "malformed status code";
      return ScanStatus::kMalformed;
    }
    status = status * 10 + (digit - '0');
  }
  ResponseHead result;
  result.status = status;
  result.head_size = head_size;
  const bool http10 = status_line[7] == '0';
  bool keep_alive = false;
  bool close = false;
  bool have_length = false;
  text.remove_prefix(status_end + 2);
  while (!text.empty()) {
    const std::size_t line_end = text.find("\r\n");
    const std::string_view line = text.substr(0, line_end);
    text.remove_prefix(line_end + 2);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      *error = "malformed header line";
      return ScanStatus::kMalformed;
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (equals_ignoring_case(name, "content-length")) {
      if (value.empty() || value.size() > 18 || have_length) {
        *error = "malformed or repeated Content-Length";
        return ScanStatus::kMalformed;
      }
      std::uint64_t length = 0;
      for (const char digit : value) {
        if (digit < '0' || digit > '9') {
          *error = "malformed Content-Length";
          return ScanStatus::kMalformed;
        }
        length = length * 10 + static_cast<std::uint64_t>(digit - '0');
      }
      result.content_length = length;
      have_length = true;
    } else if (equals_ignoring_case(name, "transfer-encoding")) {
      *error = "Transfer-Encoding in a response (only Content-Length bodies are read)";
      return ScanStatus::kMalformed;
    } else if (equals_ignoring_case(name, "connection")) {
      if (contains_token_ignoring_case(value, "close")) close = true;
      if (contains_token_ignoring_case(value, "keep-alive")) keep_alive = true;
    }
  }
  result.connection_close = close || (http10 && !keep_alive);
  *head = result;
  return ScanStatus::kComplete;
}

namespace {


struct Shared {
  const HttpLoadOptions* options = nullptr;
  std::string requests;  // `pipeline` requests back to back, formatted once
  Phase phase = Phase::kWarmup;
  HttpLoadResult result;
  std::optional<Error> fatal;  // ends every connection
};

// Why a connection has to be opened again (not a run-ending error).
struct Broken {
  const char* reason;
};

void note_connection_error(Shared& shared, std::string_view reason) {
  if (shared.result.connection_errors++ == 0) {
    shared.result.first_connection_error = std::string(reason);
    std::fprintf(stderr, "http load: first connection error: %s\n", shared.result.first_connection_error.c_str());
  }
  if (shared.result.connection_errors > shared.options->max_connection_errors && !shared.fatal) {
    shared.fatal = Error(EPROTO, "http load: too many connection errors (the first is on stderr)");
  }
}

Task<Result<TcpStream>> open_stream(SocketAddress address) {
  auto stream = co_await TcpStream::connect(address);
  if (!stream) co_return stream.error();
  (void)stream->set_nodelay(true);
  co_return std::move(*stream);
}

// One keep-alive connection until the phase is kStop: returns nullopt when it stopped cleanly, a Broken
// when the connection must be opened again. `buffer` is the connection's read buffer.
Task<Result<std::optional<Broken>>> drive(TcpStream& stream, std::vector<char>& buffer, Shared& shared) {
  const std::size_t capacity = buffer.size();
  const int pipeline = shared.options->pipeline;
  const bool borrowed = shared.options->borrowed_reads;
  std::size_t begin = 0;  // unconsumed bytes are buffer[begin, end)
  std::size_t end = 0;
  BorrowedBuffer chunk;  // borrowed reads: the last chunk received, copied out from chunk_used on
  std::size_t chunk_used = 0;
  while (shared.phase != Phase::kStop && !shared.fatal) {
    const auto sent_at = Clock::now();
    if (auto sent = co_await stream.write_all(ConstBuffer(shared.requests.data(), shared.requests.size())); !sent) {
      co_return std::optional<Broken>(Broken{"send failed (the server closed or reset the connection)"});
    }
    int outstanding = pipeline;
    bool have_head = false;
    ResponseHead head;
    std::uint64_t body_left = 0;
    while (outstanding > 0) {
      // Take every response the buffer holds.
      for (;;) {
        if (!have_head) {
          const char* error = nullptr;
          const ScanStatus scanned =
              scan_response_head(std::string_view(buffer.data() + begin, end - begin), &head, &error);
          if (scanned == ScanStatus::kMalformed) co_return std::optional<Broken>(Broken{error});
          if (scanned == ScanStatus::kNeedMore) break;
          begin += head.head_size;
          body_left = head.content_length;
          have_head = true;
        }
        const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(body_left, end - begin));
        begin += take;
        body_left -= take;
        if (body_left > 0) break;
        // One response complete.
        have_head = false;
        --outstanding;
        if (shared.phase == Phase::kMeasure) {
          shared.result.latencies->record(Clock::now() - sent_at);
          ++shared.result.requests;
          shared.result.response_bytes += head.head_size + head.content_length;
          if (head.status != 200) ++shared.result.non_200;
        }
        if (head.connection_close) co_return std::optional<Broken>(Broken{"the server sent Connection: close"});
        if (outstanding == 0) break;
      }
      if (begin == end) begin = end = 0;
      if (outstanding == 0) break;
      if (end == capacity) {
        if (begin == 0) co_return std::optional<Broken>(Broken{"a response head larger than the read buffer"});
        std::memmove(buffer.data(), buffer.data() + begin, end - begin);
        end -= begin;
        begin = 0;
      }
      if (!borrowed) {
        auto got = co_await stream.read(MutableBuffer(buffer.data() + end, capacity - end));
        if (!got) co_return std::optional<Broken>(Broken{"recv failed (the server reset the connection)"});
        if (*got == 0) co_return std::optional<Broken>(Broken{"the server closed the connection with responses outstanding"});
        end += *got;
        continue;
      }
      if (chunk_used == chunk.size()) {
        auto got = co_await stream.read_borrowed();
        if (!got) co_return std::optional<Broken>(Broken{"recv failed (the server reset the connection)"});
        if (got->empty()) co_return std::optional<Broken>(Broken{"the server closed the connection with responses outstanding"});
        chunk = std::move(*got);
        chunk_used = 0;
      }
      // Copied out so that a response split across chunks is scanned like any other; the lent buffer goes
      // back as soon as it is used up.
      const std::size_t copied = std::min(chunk.size() - chunk_used, capacity - end);
      std::memcpy(buffer.data() + end, chunk.data() + chunk_used, copied);
      chunk_used += copied;
      end += copied;
      if (chunk_used == chunk.size()) {
        chunk.release();  // now empty
        chunk_used = 0;
      }
    }
    if (begin != end || chunk_used != chunk.size()) {
      co_return std::optional<Broken>(Broken{"bytes after the last response of a batch"});
    }
  }
  co_return std::optional<Broken>();
}

// A connection's whole life: drive it, open it again when it breaks, until the phase is kStop.
Task<Result<void>> connection(TcpStream first, Shared* shared) {
  std::vector<char> buffer(shared->options->read_buffer_size);
  std::optional<TcpStream> stream(std::move(first));
  for (;;) {
    auto outcome = co_await drive(*stream, buffer, *shared);
    if (!outcome) co_return outcome.error();
    if (!outcome->has_value()) co_return ok();
    note_connection_error(*shared, (*outcome)->reason);
    stream.reset();
    if (shared->phase == Phase::kStop || shared->fatal) co_return ok();
    auto reopened = co_await open_stream(shared->options->address);
    if (!reopened) co_return reopened.error();
    stream.emplace(std::move(*reopened));
  }
}

Task<Result<void>> connect_into(SocketAddress address, std::optional<TcpStream>* slot) {
  auto stream = co_await open_stream(address);
  if (!stream) co_return stream.error();
  *slot = std::move(*stream);
  co_return ok();
}

}  // namespace

Task<Result<HttpLoadResult>> run_http_load(HttpLoadOptions options) {
  if (options.connections < 1 || options.pipeline < 1 || options.read_buffer_size < 1024) {
    co_return Error(EINVAL, "http load: connections and pipeline must be >= 1, the read buffer >= 1 KiB");
  }
  Worker* worker = Worker::current();
  Shared shared;
  shared.options = &options;
  std::string request = "GET " + options.path + " HTTP/1.1\r\nHost: " + options.host + "\r\n\r\n";
  for (int i = 0; i < options.pipeline; ++i) shared.requests += request;

  // Every connection first, at most 256 handshakes at a time (the listen backlog must not overflow).
  std::vector<std::optional<TcpStream>> streams(static_cast<std::size_t>(options.connections));
  for (int first = 0; first < options.connections; first += 256) {
    std::vector<JoinHandle<Result<void>>> batch;
    for (int i = first; i < std::min(options.connections, first + 256); ++i) {
      batch.push_back(worker->spawn(connect_into(options.address, &streams[static_cast<std::size_t>(i)])));
    }
    if (auto connected = co_await bench::join_all(&batch); !connected) co_return connected.error();
  }
  std::vector<JoinHandle<Result<void>>> drivers;
  drivers.reserve(streams.size());
  for (auto& stream : streams) drivers.push_back(worker->spawn(connection(std::move(*stream), &shared)));
  streams.clear();

  if (auto finished = co_await bench::run_window(options, shared, drivers); !finished) co_return finished.error();
  if (shared.fatal) co_return *shared.fatal;
  co_return std::move(shared.result);
}

}  // namespace surge::bench
