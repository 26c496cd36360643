#include "examples/http/server.h"

#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "examples/http/static_path.h"
#include "fs/file.h"
#include "runtime/error.h"
#include "runtime/worker.h"

namespace surge::http {

// One figure written by one worker's thread and read by any: a relaxed load and store, no atomic add.
class Cell {
 public:
  void add(std::uint64_t amount) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + amount, std::memory_order_relaxed);
  }
  void subtract(std::uint64_t amount) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) - amount, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

namespace {

using Clock = Worker::Clock;

// A static file kept open by a worker's open-file cache, with the part of its response head that does
// not change. Shared: a request that is reading it keeps it open if the cache drops it meanwhile.
struct CachedFile {
  fs::File file;
  std::uint64_t size = 0;
  std::int64_t modified = 0;       // Unix seconds
  std::string last_modified;       // "Last-Modified: <date>\r\n"
  std::string head;                // "Content-Type: ...\r\nLast-Modified: ...\r\nContent-Length: n\r\n\r\n"
  Clock::time_point opened;
};

// One worker's open-file cache, keyed by the request's path as sent (a path maps to one file, and only
// paths that resolve_static_path() accepted are cached), so that a hit costs no resolving. A file is
// opened once however it is spelled: every spelling's entry shares the CachedFile of the file's canonical
// key (file_key()), so a client sending "/a", "//a", "/./a", "/%61", ... fills entries, not fds. Its
// worker's thread only.
class FileCache {
 public:
  // The entry for `path` if it is younger than `validity`, else nullptr (and a stale one is dropped).
  // Once per `validity`, every expired entry is dropped too, so that a file nobody asks for again (deleted,
  // say: its fd would hold its disk space) is closed at the worker's next use of the cache, as nginx's
  // open_file_cache does.
  const std::shared_ptr<CachedFile>* find(std::string_view path, Clock::time_point now,
                                          std::chrono::milliseconds validity) {
    if (now >= next_sweep_) {
      next_sweep_ = now + validity;
      absl::erase_if(entries_, [&](const auto& entry) { return now - entry.second->opened > validity; });
    }
    auto it = entries_.find(absl::string_view(path.data(), path.size()));
    if (it == entries_.end()) return nullptr;
    if (now - it->second->opened > validity) {
      entries_.erase(it);
      return nullptr;
    }
    return &it->second;
  }
  void insert(std::string_view path, std::shared_ptr<CachedFile> file, std::size_t max_entries) {
    if (max_entries == 0) return;
    if (entries_.size() >= max_entries && !entries_.contains(absl::string_view(path.data(), path.size()))) {
      entries_.erase(entries_.begin());
    }
    entries_.insert_or_assign(std::string(path), std::move(file));
  }
  // Drops every entry of `file` (found to have shrunk: the next request opens it again). A scan of the
  // cache, on an error path only.
  void erase(const CachedFile* file) {
    absl::erase_if(entries_, [file](const auto& entry) { return entry.second.get() == file; });
  }
  void clear() { entries_.clear(); }

 private:
  absl::flat_hash_map<std::string, std::shared_ptr<CachedFile>> entries_;
  Clock::time_point next_sweep_{};
};

// The cache key of the file at `relative` (resolve_static_path()'s result): "/" + relative, a path that
// resolves to it, unless it holds a '%' (a request's "/%41" names "A", not "%41"); then a key no request
// path can be (a NUL first).
std::string file_key(std::string_view relative) {
  std::string key(1, relative.find('%') == std::string_view::npos ? '/' : '\0');
  key.append(relative.data(), relative.size());
  return key;
}

}  // namespace

struct alignas(64) Service::PerWorker {
  Cell connections_accepted;
  Cell connections_open;
  Cell requests[kStatusSlots];
  Cell bytes_received;
  Cell bytes_sent;
  Cell timeouts;
  Connection* connections = nullptr;  // this worker's open connections; its thread only
  FileCache files;                    // its thread only

  void count_status(int status) noexcept { requests[slot_of(status)].add(1); }
  // A response counted and then taken back before it was sent (a cached file found shrunk).
  void uncount_status(int status) noexcept { requests[slot_of(status)].subtract(1); }
  static std::size_t slot_of(int status) noexcept {
    std::size_t slot = 0;
    while (slot < std::size(kCountedStatuses) && kCountedStatuses[slot] != status) ++slot;
    return slot;
  }
  WorkerStats read() const noexcept {
    WorkerStats stats;
    stats.connections_accepted = connections_accepted.get();
    stats.connections_open = connections_open.get();
    for (std::size_t i = 0; i < kStatusSlots; ++i) stats.requests[i] = requests[i].get();
    stats.bytes_received = bytes_received.get();
    stats.bytes_sent = bytes_sent.get();
    stats.timeouts = timeouts.get();
    return stats;
  }
};

namespace {

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
  }
  return "Unknown";
}

// The Date header's value, formatted once per second per worker thread.
std::string_view http_date_now() noexcept {
  struct Cache {
    std::int64_t second = -1;
    char text[29];
  };
  thread_local Cache cache;
  timespec now;
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  if (now.tv_sec != cache.second) {
    cache.second = now.tv_sec;
    format_http_date(now.tv_sec, cache.text);
  }
  return std::string_view(cache.text, sizeof(cache.text));
}

void append(std::string& out, std::string_view text) { out.append(text.data(), text.size()); }

void append_number(std::string& out, std::uint64_t value) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof(digits), value).ptr;
  out.append(digits, static_cast<std::size_t>(end - digits));
}

// The status line and the headers every response carries; the caller adds its own and the blank line.
void append_head(std::string& out, int version_minor, int status, bool keep_alive) {
  append(out, version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ");
  append_number(out, static_cast<std::uint64_t>(status));
  out.push_back(' ');
  append(out, reason_phrase(status));
  append(out, "\r\nServer: surge\r\nDate: ");
  append(out, http_date_now());
  if (!keep_alive) {
    append(out, "\r\nConnection: close");
  } else if (version_minor == 0) {
    append(out, "\r\nConnection: keep-alive");
  }
  append(out, "\r\n");
}

// A complete response with a small body (or, for HEAD, without it).
void append_response(std::string& out, int version_minor, int status, bool keep_alive, std::string_view type,
                     std::string_view body, bool head_only, std::string_view extra_headers = {}) {
  append_head(out, version_minor, status, keep_alive);
  if (!type.empty()) {
    append(out, "Content-Type: ");
    append(out, type);
    append(out, "\r\n");
  }
  append(out, extra_headers);
  append(out, "Content-Length: ");
  append_number(out, body.size());
  append(out, "\r\n\r\n");
  if (!head_only) append(out, body);
}

enum class Route : std::uint8_t { kPlaintext, kJson, kMetrics, kEcho, kFile };

Route route_of(std::string_view path) noexcept {
  if (path == "/plaintext") return Route::kPlaintext;
  if (path == "/json") return Route::kJson;
  if (path == "/metrics") return Route::kMetrics;
  if (path == "/echo") return Route::kEcho;
  return Route::kFile;
}

constexpr std::string_view kPlaintextBody = "Hello, World!";
constexpr std::string_view kJsonBody = R"({"message":"Hello, World!"})";
constexpr std::size_t kInlineFileBytes = 64 * 1024;  // files up to this go out in the same write as their head
// A connection's buffers start small (most heads are a few hundred bytes) and grow once, if needed: an
// idle connection holds about 2 KiB of buffers (plus its frame), not max_head_bytes + flush_bytes.
constexpr std::size_t kFirstInputBytes = 1024;
constexpr std::size_t kFirstOutputBytes = 512;

}  // namespace

// One connection's state and loop. Lives in Service::serve_connection's frame.
class Service::Connection {
 public:
  Connection(Service& service, TcpStream& stream, PerWorker& counters)
      : service_(service), options_(service.options_), stream_(stream), per_worker_(counters),
        capacity_(std::min(kFirstInputBytes, options_.limits.max_head_bytes)), in_(new char[capacity_]) {
    out_.reserve(kFirstOutputBytes);
    next_ = per_worker_.connections;
    if (next_ != nullptr) next_->prev_ = this;
    per_worker_.connections = this;
  }
  ~Connection() {
    if (prev_ != nullptr) prev_->next_ = next_;
    else per_worker_.connections = next_;
    if (next_ != nullptr) next_->prev_ = prev_;
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // drain(): on the connection's worker. Ends a wait for the next request.
  void drain() noexcept {
    if (idle_) (void)stream_.shutdown(Shutdown::kRead);
  }
  Connection* next() const noexcept { return next_; }

  Task<void> run();

 private:
  // What a request's answer needs once its head's bytes may be gone (the body was read over them).
  struct Request {
    Route route = Route::kFile;
    Method method = Method::kOther;
    int version_minor = 1;
    bool keep_alive = true;
    std::string path;               // only when the head is copied (requests with a body)
    std::string if_modified_since;  // likewise
  };

  // Grows the input buffer (up to Limits::max_head_bytes), keeping what it holds.
  void grow_input() {
    const std::size_t grown = std::min(capacity_ * 4, options_.limits.max_head_bytes);
    if (grown <= capacity_) return;
    std::unique_ptr<char[]> bigger(new char[grown]);
    std::memcpy(bigger.get(), in_.get(), end_);
    in_ = std::move(bigger);
    capacity_ = grown;
  }

  // Empties out_ once it has been sent, and gives its memory back if one large answer (an /echo, a big
  // batch) grew it past twice what a batch needs (flush_bytes plus a 64 KiB file): an idle keep-alive
  // connection keeps a small buffer, not the largest answer it ever sent.
  void trim_output() {
    out_.clear();
    if (out_.capacity() > 2 * (options_.flush_bytes + kInlineFileBytes)) {
      std::string().swap(out_);
      out_.reserve(kFirstOutputBytes);
    }
  }
  // Likewise for an /echo body once it has been answered.
  void trim_body() {
    body_.clear();
    if (body_.capacity() > kInlineFileBytes) std::string().swap(body_);
  }

  const Limits& limits() const noexcept { return options_.limits; }
  std::string_view input() const noexcept { return std::string_view(in_.get() + start_, end_ - start_); }

  // Appends the answer to a request without a body that needs no I/O of its own; false if it needs a file.
  bool answer_simple(Route route, Method method, int version_minor, bool keep_alive, std::string_view body);
  void answer_error(int status, int version_minor, std::string_view reason);
  void count(int status) noexcept { per_worker_.count_status(status); }
  // A complete response with a small body (none for HEAD) appended to out_, and counted.
  void respond(int version_minor, int status, bool keep_alive, std::string_view type, std::string_view body,
               bool head_only, std::string_view extra_headers = {}) {
    append_response(out_, version_minor, status, keep_alive, type, body, head_only, extra_headers);
    count(status);
  }
  // 405, with the methods the route takes (`allow`: "Allow: ...\r\n").
  void refuse_method(int version_minor, bool keep_alive, bool head_only, std::string_view allow) {
    respond(version_minor, 405, keep_alive, "text/plain", "method not allowed\n", head_only, allow);
  }

  // Sends out_ (and empties it): false if the client did not take it in time or the connection broke.
  Task<bool> flush_slow();
  // Accounts for a finished write; false if it failed. A client that did not take it within
  // write_timeout is reset: it does not read, so the kernel's buffers for it are freed now.
  bool finish_write(const TransferResult& sent) noexcept {
    per_worker_.bytes_sent.add(sent.transferred());
    if (sent) return true;
    if (sent.error().is_timed_out()) {
      per_worker_.timeouts.add(1);
      (void)stream_.abort();
    }
    return false;
  }
  // The request's body: read (and kept in body_ for /echo, else dropped); false to close the connection
  // (the error response, if any, is in out_ then).
  Task<bool> read_body(Route route, bool keep, int version_minor);
  // Appends a file's answer head (304, or 200 with its Content-Length); true if its body must follow.
  bool append_file_head(const CachedFile& file, std::string_view if_modified_since, bool head_only,
                        int version_minor, bool keep_alive);
  // A static file's answer into out_ (a large file's body written straight out): false to close.
  Task<bool> answer_file(std::string_view path, std::string_view if_modified_since, bool head_only,
                         int version_minor, bool keep_alive);
  // A request with a body: its body, then its answer. False to close.
  Task<bool> answer_with_body();
  // Half-closes, then drains what the client still sends for up to linger_timeout, so that closing does
  // not reset the connection before the client has read our last response.
  Task<void> linger();

  Service& service_;
  const ServiceOptions& options_;
  TcpStream& stream_;
  PerWorker& per_worker_;
  std::size_t capacity_;
  std::unique_ptr<char[]> in_;
  std::size_t start_ = 0;  // in_[start_, end_): received, not yet consumed
  std::size_t end_ = 0;
  HeadParser parser_;
  // What the service uses of the current request's head (its views point into in_). The parser fills a
  // RequestHead, with its array of header fields, kept once per worker thread (parse_head()): a head
  // per connection would hold 3.2 KiB of field slots for its whole life.
  struct Head {
    Method method = Method::kOther;
    int version_minor = 1;
    BodyKind body = BodyKind::kNone;
    bool keep_alive = true;
    bool expect_continue = false;
    std::uint64_t content_length = 0;
    std::string_view path;
    std::string_view if_modified_since;
  };
  ParseResult parse_head() noexcept {
    thread_local RequestHead parsed;
    const ParseResult result = parser_.parse(input(), limits(), parsed);
    head_.method = parsed.method;
    head_.version_minor = parsed.version_minor;
    head_.body = parsed.body;
    head_.keep_alive = parsed.keep_alive;
    head_.expect_continue = parsed.expect_continue;
    head_.content_length = parsed.content_length;
    head_.path = parsed.path;
    head_.if_modified_since = parsed.if_modified_since;
    return result;
  }
  Head head_;
  Clock::time_point head_deadline_{};
  bool head_clock_running_ = false;
  std::string out_;
  std::string body_;                     // an /echo body
  std::unique_ptr<char[]> file_chunk_;   // for files over kInlineFileBytes, made on first use
  bool idle_ = false;                    // waiting for the first byte of a request
  Connection* prev_ = nullptr;           // in per_worker_.connections
  Connection* next_ = nullptr;
};

bool Service::Connection::answer_simple(Route route, Method method, int version_minor, bool keep_alive,
                                        std::string_view echo_body) {
  const bool head_only = method == Method::kHead;
  const bool readable = method == Method::kGet || method == Method::kHead;
  switch (route) {
    case Route::kPlaintext:
    case Route::kJson:
    case Route::kMetrics:
      if (!readable) {
        refuse_method(version_minor, keep_alive, head_only, "Allow: GET, HEAD\r\n");
        return true;
      }
      if (route == Route::kPlaintext) {
        respond(version_minor, 200, keep_alive, "text/plain", kPlaintextBody, head_only);
      } else if (route == Route::kJson) {
        respond(version_minor, 200, keep_alive, "application/json", kJsonBody, head_only);
      } else {
        respond(version_minor, 200, keep_alive, "text/plain; version=0.0.4; charset=utf-8", service_.metrics(),
                head_only);
      }
      return true;
    case Route::kEcho:
      if (method != Method::kPost) {
        refuse_method(version_minor, keep_alive, head_only, "Allow: POST\r\n");
        return true;
      }
      respond(version_minor, 200, keep_alive, "application/octet-stream", echo_body, false);
      return true;
    case Route::kFile:
      if (!readable) {
        refuse_method(version_minor, keep_alive, head_only, "Allow: GET, HEAD\r\n");
        return true;
      }
      if (options_.root.empty()) {
        respond(version_minor, 404, keep_alive, "text/plain", "not found\n", head_only);
        return true;
      }
      return false;
  }
  return true;
}

void Service::Connection::answer_error(int status, int version_minor, std::string_view reason) {
  std::string body(reason);
  body.push_back('\n');
  respond(version_minor, status, /*keep_alive=*/false, "text/plain", body, false);
}

Task<bool> Service::Connection::flush_slow() {
  while (!out_.empty()) {
    auto write = stream_.write_all(ConstBuffer(out_.data(), out_.size()));
    write.set_coarse_deadline(Clock::now() + options_.write_timeout);
    const TransferResult sent = co_await write;
    trim_output();
    if (!finish_write(sent)) co_return false;
  }
  co_return true;
}

Task<void> Service::Connection::linger() {
  (void)stream_.shutdown(Shutdown::kWrite);
  const Clock::time_point deadline = Clock::now() + options_.linger_timeout;
  for (;;) {
    // Checked here, not left to the coarse deadline alone: a read of a receive queue that is never empty
    // completes at once each time (or wins its race with the wheel's cancel), so a client that keeps
    // sending would otherwise keep the connection for as long as it likes.
    if (Clock::now() >= deadline) co_return;
    auto read = stream_.read(MutableBuffer(in_.get(), capacity_));
    read.set_coarse_deadline(deadline);
    const Result<std::size_t> received = co_await read;
    if (!received || *received == 0) co_return;
    per_worker_.bytes_received.add(*received);
  }
}

Task<bool> Service::Connection::read_body(Route route, bool keep, int version_minor) {
  body_.clear();
  const bool chunked = head_.body == BodyKind::kChunked;
  std::uint64_t remaining = head_.content_length;
  ChunkedDecoder decoder(limits());
  for (;;) {
    // Take what the buffer holds.
    if (chunked) {
      while (start_ < end_) {
        const ChunkedDecoder::Step step = decoder.feed(input());
        start_ += step.consumed;
        if (step.status != 0) {
          answer_error(step.status, version_minor, step.reason);
          co_return false;
        }
        if (keep) body_.append(step.data.data(), step.data.size());
        if (step.done) co_return true;
        if (step.consumed == 0 && step.data.empty()) break;
      }
    } else {
      const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, end_ - start_));
      if (keep) body_.append(in_.get() + start_, take);
      start_ += take;
      remaining -= take;
      if (remaining == 0) co_return true;
    }
    // The buffer is used up (a body is consumed as it arrives): read more into all of it.
    start_ = end_ = 0;
    grow_input();
    auto read = stream_.read(MutableBuffer(in_.get(), capacity_));
    read.set_coarse_deadline(Clock::now() + options_.body_timeout);
    const Result<std::size_t> received = co_await read;
    if (!received) {
      if (received.error().is_timed_out()) {
        per_worker_.timeouts.add(1);
        answer_error(408, version_minor, "request body timed out");
      }
      co_return false;
    }
    if (*received == 0) co_return false;  // the client gave up mid-body: nobody to answer
    per_worker_.bytes_received.add(*received);
    end_ = *received;
  }
}

bool Service::Connection::append_file_head(const CachedFile& file, std::string_view if_modified_since,
                                           bool head_only, int version_minor, bool keep_alive) {
  std::int64_t since = 0;
  if (!if_modified_since.empty() && parse_http_date(if_modified_since, since) && file.modified <= since) {
    append_head(out_, version_minor, 304, keep_alive);
    append(out_, file.last_modified);
    append(out_, "\r\n");
    count(304);
    return false;
  }
  append_head(out_, version_minor, 200, keep_alive);
  append(out_, file.head);
  count(200);
  return !head_only && file.size > 0;
}

Task<bool> Service::Connection::answer_file(std::string_view path, std::string_view if_modified_since,
                                            bool head_only, int version_minor, bool keep_alive) {
  std::shared_ptr<CachedFile> entry;
  if (const auto* hit = per_worker_.files.find(path, Clock::now(), options_.file_cache_validity)) entry = *hit;
  std::string relative;
  if (!entry) {
    if (const int status = resolve_static_path(path, relative); status != 0) {
      answer_error(status, version_minor, "bad path");
      co_return false;
    }
    // Another spelling of a file the worker has open: share its entry.
    const std::string key = file_key(relative);
    if (key != path) {
      if (const auto* hit = per_worker_.files.find(key, Clock::now(), options_.file_cache_validity)) {
        entry = *hit;
        if (!service_.draining()) per_worker_.files.insert(path, entry, options_.file_cache_entries);
      }
    }
  }
  if (!entry) {
    std::string full = options_.root;
    full.push_back('/');
    full += relative;
    // The status for a path that cannot be opened (or stat'ed).
    auto refuse = [&](int code) {
      const int status = (code == ENOENT || code == ENOTDIR || code == ENAMETOOLONG || code == ELOOP) ? 404
                         : code == EACCES                                                           ? 403
                                                                                                    : 500;
      respond(version_minor, status, keep_alive, "text/plain",
              status == 404 ? "not found\n" : (status == 403 ? "forbidden\n" : "cannot open\n"), head_only);
    };
    // Only a regular file is opened: open(2) of a FIFO waits for a writer (on epoll, and on io_uring
    // without the openat opcode, in a blocking-pool lane: the request would hang, four of them would stall
    // the worker's file I/O, and its shutdown would wait), and a device may do anything when opened. A
    // cache miss pays this statx; the fstat below stays the authority on what was opened (a file replaced
    // by a FIFO between the two is the root's owner's doing, as symbolic links are).
    const Result<fs::FileInfo> found = co_await fs::stat(full);
    if (!found) {
      refuse(found.error().code());
      co_return true;
    }
    if (!found->is_regular()) {
      refuse(ENOENT);
      co_return true;
    }
    Result<fs::File> opened = co_await fs::File::open(full);
    if (!opened) {
      refuse(opened.error().code());
      co_return true;
    }
    Result<struct statx> described = co_await opened->statx();
    if (!described) {
      respond(version_minor, 500, keep_alive, "text/plain", "cannot stat\n", head_only);
      co_return true;
    }
    const fs::FileInfo info = fs::FileInfo::from(*described);
    if (!info.is_regular()) {
      refuse(ENOENT);  // what was opened is not the regular file the stat before saw
      co_return true;
    }
    entry = std::make_shared<CachedFile>();
    entry->file = std::move(*opened);
    entry->size = info.size;
    entry->modified = std::chrono::duration_cast<std::chrono::seconds>(info.modified.time_since_epoch()).count();
    char date[29];
    format_http_date(entry->modified, date);
    entry->last_modified = "Last-Modified: ";
    append(entry->last_modified, std::string_view(date, sizeof(date)));
    append(entry->last_modified, "\r\n");
    entry->head = "Content-Type: ";
    append(entry->head, content_type_for(relative));
    append(entry->head, "\r\n");
    append(entry->head, entry->last_modified);
    append(entry->head, "Content-Length: ");
    append_number(entry->head, info.size);
    append(entry->head, "\r\n\r\n");
    entry->opened = Clock::now();
    if (!service_.draining()) {
      const std::string key = file_key(relative);
      per_worker_.files.insert(key, entry, options_.file_cache_entries);
      if (key != path) per_worker_.files.insert(path, entry, options_.file_cache_entries);
    }
  }
  const std::size_t mark = out_.size();
  if (!append_file_head(*entry, if_modified_since, head_only, version_minor, keep_alive)) co_return true;
  const std::uint64_t size = entry->size;
  if (size <= kInlineFileBytes) {
    const std::size_t at = out_.size();
    out_.resize(at + size);
    const TransferResult read = co_await entry->file.read_exact_at(MutableBuffer(out_.data() + at, size), 0);
    // A file that shrank (or failed) since its size was taken cannot be answered honestly any more: its
    // head and the padding are taken back (the answers before it still go out), and the connection closes.
    if (!read) {
      out_.resize(mark);
      per_worker_.uncount_status(200);
      per_worker_.files.erase(entry.get());
      co_return false;
    }
    co_return true;
  }
  const bool flushed = co_await flush_slow();
  if (!flushed) co_return false;
  if (!file_chunk_) file_chunk_.reset(new char[kInlineFileBytes]);
  std::uint64_t offset = 0;
  while (offset < size) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kInlineFileBytes, size - offset));
    const TransferResult read = co_await entry->file.read_exact_at(MutableBuffer(file_chunk_.get(), want), offset);
    if (!read) {
      per_worker_.files.erase(entry.get());  // shrunk: the next request opens it again
      co_return false;
    }
    auto write = stream_.write_all(ConstBuffer(file_chunk_.get(), want));
    write.set_coarse_deadline(Clock::now() + options_.write_timeout);
    const TransferResult sent = co_await write;
    if (!finish_write(sent)) co_return false;
    offset += want;
  }
  co_return true;
}

Task<bool> Service::Connection::answer_with_body() {
  // The body is read over the head's bytes: keep what the answer needs first.
  Request request;
  request.route = route_of(head_.path);
  request.method = head_.method;
  request.version_minor = head_.version_minor;
  request.keep_alive = head_.keep_alive;
  if (request.route == Route::kFile) {
    request.path.assign(head_.path);
    request.if_modified_since.assign(head_.if_modified_since);
  }
  if (head_.expect_continue && head_.version_minor == 1 && start_ == end_) {
    append(out_, "HTTP/1.1 100 Continue\r\n\r\n");
    count(100);
    const bool flushed = co_await flush_slow();
    if (!flushed) co_return false;
  }
  const bool keep = request.route == Route::kEcho && request.method == Method::kPost;
  const bool read = co_await read_body(request.route, keep, request.version_minor);
  if (!read) co_return false;
  // drain() may have come while the body arrived: this response is then the connection's last.
  if (service_.draining()) request.keep_alive = false;
  if (answer_simple(request.route, request.method, request.version_minor, request.keep_alive, body_)) {
    trim_body();
    co_return true;
  }
  const bool answered = co_await answer_file(request.path, request.if_modified_since,
                                             request.method == Method::kHead, request.version_minor,
                                             request.keep_alive);
  co_return answered;
}

// Every co_await in this file is a statement of its own (`const bool x = co_await ...;`), never inside a
// condition such as `a && co_await b`: with those, gcc 12 built a frame in which a Task awaited from here
// had no constructed header (UBSan, on the 431 path); written this way it does not. Keep it so.
Task<void> Service::Connection::run() {
  for (;;) {
    // Answer every complete request the buffer holds; their answers collect in out_.
    bool keep_alive = true;
    ParseResult failure;
    while (start_ < end_ && keep_alive) {
      const ParseResult parsed = parse_head();
      if (parsed.state == ParseState::kIncomplete) break;
      if (parsed.state == ParseState::kError) {
        failure = parsed;
        break;
      }
      parser_.reset();
      head_clock_running_ = false;
      start_ += parsed.consumed;
      if (service_.draining()) head_.keep_alive = false;
      keep_alive = head_.keep_alive;
      if (head_.body == BodyKind::kNone) {
        const Route route = route_of(head_.path);
        if (!answer_simple(route, head_.method, head_.version_minor, keep_alive, {})) {
          // A small file the worker has open: answered here, its read a page-cache hit served inline
          // (answer_file() would cost a coroutine frame per request).
          bool answered = true;
          const auto* hit = per_worker_.files.find(head_.path, Clock::now(), options_.file_cache_validity);
          if (hit != nullptr && (*hit)->size <= kInlineFileBytes) {
            const std::shared_ptr<CachedFile> file = *hit;  // open while we read it, whatever the cache does
            const std::size_t mark = out_.size();
            if (append_file_head(*file, head_.if_modified_since, head_.method == Method::kHead, head_.version_minor,
                                 keep_alive)) {
              const std::size_t at = out_.size();
              out_.resize(at + file->size);
              const TransferResult read =
                  co_await file->file.read_exact_at(MutableBuffer(out_.data() + at, file->size), 0);
              answered = static_cast<bool>(read);
              if (!answered) {
                // Shrunk (or unreadable) since it was cached: its head and padding must not go out as the
                // file; the answers before it do, then the connection closes. The next request reopens it.
                out_.resize(mark);
                per_worker_.uncount_status(200);
                per_worker_.files.erase(file.get());
              }
            }
          } else {
            answered = co_await answer_file(head_.path, head_.if_modified_since, head_.method == Method::kHead,
                                            head_.version_minor, keep_alive);
          }
          if (!answered) {
            if (!out_.empty()) {
              const bool flushed = co_await flush_slow();
              if (flushed) co_await linger();
            }
            co_return;
          }
        }
      } else {
        const bool answered = co_await answer_with_body();
        if (!answered) {
          if (!out_.empty()) {
            const bool flushed = co_await flush_slow();
            if (flushed) co_await linger();
          }
          co_return;
        }
        // answer_with_body() said "Connection: close" if drain() came during the body.
        if (service_.draining()) keep_alive = false;
      }
      if (out_.size() >= options_.flush_bytes) {
        const bool flushed = co_await flush_slow();
        if (!flushed) co_return;
      }
    }
    if (failure.state == ParseState::kError) {
      answer_error(failure.status, head_.version_minor, failure.reason);
      const bool flushed = co_await flush_slow();
      if (flushed) co_await linger();
      co_return;
    }
    if (!out_.empty()) {
      // The hot path's write: inline rather than through flush_slow(), which would allocate a frame.
      auto write = stream_.write_all(ConstBuffer(out_.data(), out_.size()));
      write.set_coarse_deadline(Clock::now() + options_.write_timeout);
      const TransferResult sent = co_await write;
      trim_output();
      if (!finish_write(sent)) co_return;
    }
    if (!keep_alive) {
      co_await linger();
      co_return;
    }

    // Empty lines between requests (RFC 9112 2.2 asks a server to ignore them; some clients send one
    // after a body) are not the start of a head: dropped, the connection waits as an idle one
    // (idle_timeout, drain()) rather than as a slow head (a 408 after header_timeout).
    if (start_ < end_) {
      std::size_t at = start_;
      while (end_ - at >= 2 && in_[at] == '\r' && in_[at + 1] == '\n') at += 2;
      if (at == end_) {
        start_ = end_;
        parser_.reset();
        head_clock_running_ = false;
      }
    }
    // Make room: what is left is the start of the next request.
    if (start_ == end_) {
      start_ = end_ = 0;
    } else if (start_ > 0) {
      std::memmove(in_.get(), in_.get() + start_, end_ - start_);
      end_ -= start_;
      start_ = 0;
    }
    if (end_ == capacity_) grow_input();  // a head longer than the first buffer (431 comes at the limit)
    const Clock::time_point now = Clock::now();
    if (end_ > 0 && !head_clock_running_) {
      head_deadline_ = now + options_.header_timeout;
      head_clock_running_ = true;
    }
    if (end_ == 0 && service_.draining()) co_return;
    auto read = stream_.read(MutableBuffer(in_.get() + end_, capacity_ - end_));
    read.set_coarse_deadline(end_ > 0 ? head_deadline_ : now + options_.idle_timeout);
    idle_ = end_ == 0;
    const Result<std::size_t> received = co_await read;
    idle_ = false;
    if (!received) {
      if (received.error().is_timed_out()) {
        per_worker_.timeouts.add(1);
        if (end_ > 0) {
          answer_error(408, 1, "request head timed out");
          const bool flushed = co_await flush_slow();
          if (flushed) co_await linger();
        }
      }
      co_return;
    }
    if (*received == 0) co_return;  // the client closed; a partial request has nobody to answer
    per_worker_.bytes_received.add(*received);
    end_ += *received;  // an incomplete head starts its clock at the next turn (above)
  }
}

Service::Service(Runtime& runtime, ServiceOptions options) : runtime_(&runtime), options_(std::move(options)) {
  if (options_.limits.max_head_bytes < 64) options_.limits.max_head_bytes = 64;
  if (options_.flush_bytes == 0) options_.flush_bytes = 1;
  workers_.reserve(runtime.size());
  for (std::size_t i = 0; i < runtime.size(); ++i) workers_.push_back(std::make_shared<PerWorker>());
}

Service::~Service() = default;

Task<void> Service::serve_connection(TcpStream stream) {
  const std::size_t index = stream.worker().index();
  PerWorker& counters = *workers_[index < workers_.size() ? index : 0];
  counters.connections_accepted.add(1);
  counters.connections_open.add(1);
  struct Closed {
    PerWorker& counters;
    ~Closed() { counters.connections_open.subtract(1); }
  } closed{counters};
  (void)stream.set_nodelay(true);
  Connection connection(*this, stream, counters);
  co_await connection.run();
}

void Service::drain() {
  if (draining_.exchange(true)) return;
  for (std::size_t i = 0; i < workers_.size() && i < runtime_->size(); ++i) {
    // Detached: the walk runs on worker i, the only thread that touches its list.
    // It shares the worker's PerWorker, which a Service destroyed right after drain() would free first.
    (void)runtime_->spawn_on(i, [](std::shared_ptr<PerWorker> counters) -> Task<void> {
      for (Connection* connection = counters->connections; connection != nullptr; connection = connection->next()) {
        connection->drain();
      }
      counters->files.clear();
      co_return;
    }(workers_[i]));
  }
}

WorkerStats Service::stats(std::size_t worker) const noexcept {
  return worker < workers_.size() ? workers_[worker]->read() : WorkerStats{};
}

WorkerStats Service::total() const noexcept {
  WorkerStats sum;
  for (const auto& counters : workers_) {
    const WorkerStats one = counters->read();
    sum.connections_accepted += one.connections_accepted;
    sum.connections_open += one.connections_open;
    for (std::size_t i = 0; i < kStatusSlots; ++i) sum.requests[i] += one.requests[i];
    sum.bytes_received += one.bytes_received;
    sum.bytes_sent += one.bytes_sent;
    sum.timeouts += one.timeouts;
  }
  return sum;
}

std::string Service::metrics() const {
  std::string out;
  out.reserve(4096 + 2048 * workers_.size());
  const std::size_t workers = std::min(workers_.size(), runtime_->size());
  std::vector<BackendCounters> backend(workers);
  std::vector<std::string_view> kind(workers);
  for (std::size_t i = 0; i < workers; ++i) {
    backend[i] = runtime_->worker(i).counters();
    kind[i] = runtime_->worker(i).backend_kind() == BackendKind::kIoUring ? "io_uring" : "epoll";
  }
  auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
    append(out, "# HELP ");
    append(out, name);
    out.push_back(' ');
    append(out, help);
    append(out, "\n# TYPE ");
    append(out, name);
    out.push_back(' ');
    append(out, type);
    out.push_back('\n');
  };
  auto worker_sample = [&](std::string_view name, std::size_t worker, std::uint64_t value) {
    append(out, name);
    append(out, "{worker=\"");
    append_number(out, worker);
    append(out, "\",backend=\"");
    append(out, kind[worker]);
    append(out, "\"} ");
    append_number(out, value);
    out.push_back('\n');
  };
  struct BackendFamily {
    std::string_view name;
    std::string_view help;
    std::uint64_t BackendCounters::*field;
  };
  static constexpr BackendFamily kBackendFamilies[] = {
      {"surge_operations_submitted_total", "I/O operations submitted to the worker's backend.",
       &BackendCounters::operations_submitted},
      {"surge_operations_completed_total", "I/O operations completed by the worker's backend.",
       &BackendCounters::operations_completed},
      {"surge_sqes_submitted_total", "io_uring submission queue entries queued (0 on epoll).",
       &BackendCounters::sqes_submitted},
      {"surge_cqes_reaped_total", "io_uring completion queue entries reaped (0 on epoll).",
       &BackendCounters::cqes_reaped},
      {"surge_wait_syscalls_total", "io_uring_enter or epoll_wait calls.", &BackendCounters::wait_syscalls},
      {"surge_io_syscalls_total", "I/O system calls made outside the ring (epoll: recv, send, accept4, ...).",
       &BackendCounters::io_syscalls},
      {"surge_wakeups_total", "Wake-ups sent to the worker while it slept.", &BackendCounters::wakeups},
      {"surge_lent_buffers_exhausted_total", "Receives that found no lent buffer free.",
       &BackendCounters::lent_buffers_exhausted},
  };
  for (const BackendFamily& f : kBackendFamilies) {
    family(f.name, "counter", f.help);
    for (std::size_t i = 0; i < workers; ++i) worker_sample(f.name, i, backend[i].*(f.field));
  }
  std::vector<WorkerStats> stats(workers);
  for (std::size_t i = 0; i < workers; ++i) stats[i] = workers_[i]->read();
  family("http_connections_open", "gauge", "Connections open now.");
  for (std::size_t i = 0; i < workers; ++i) worker_sample("http_connections_open", i, stats[i].connections_open);
  family("http_connections_accepted_total", "counter", "Connections accepted.");
  for (std::size_t i = 0; i < workers; ++i) {
    worker_sample("http_connections_accepted_total", i, stats[i].connections_accepted);
  }
  family("http_requests_total", "counter", "Responses sent, by status code.");
  for (std::size_t i = 0; i < workers; ++i) {
    for (std::size_t slot = 0; slot < kStatusSlots; ++slot) {
      if (stats[i].requests[slot] == 0) continue;
      append(out, "http_requests_total{worker=\"");
      append_number(out, i);
      append(out, "\",code=\"");
      if (slot < std::size(kCountedStatuses)) {
        append_number(out, static_cast<std::uint64_t>(kCountedStatuses[slot]));
      } else {
        append(out, "other");
      }
      append(out, "\"} ");
      append_number(out, stats[i].requests[slot]);
      out.push_back('\n');
    }
  }
  family("http_received_bytes_total", "counter", "Bytes received from clients.");
  for (std::size_t i = 0; i < workers; ++i) worker_sample("http_received_bytes_total", i, stats[i].bytes_received);
  family("http_sent_bytes_total", "counter", "Bytes sent to clients.");
  for (std::size_t i = 0; i < workers; ++i) worker_sample("http_sent_bytes_total", i, stats[i].bytes_sent);
  family("http_timeouts_total", "counter", "Requests answered 408, idle connections closed, non-reading clients reset.");
  for (std::size_t i = 0; i < workers; ++i) worker_sample("http_timeouts_total", i, stats[i].timeouts);
  return out;
}

Result<std::unique_ptr<Server>> serve(Runtime& runtime, const SocketAddress& address,
                                      std::shared_ptr<Service> service, const ServeOptions& options) {
  return surge::serve(
      runtime, address,
      [service](TcpStream stream) -> Task<void> { return service->serve_connection(std::move(stream)); },
      options);
}

}  // namespace surge::http
