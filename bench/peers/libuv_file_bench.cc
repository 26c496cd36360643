// libuv_file_bench: libuv's row of bench/file_compare.py (protocol: file_protocol.h): uv_fs_read with a
// callback, `depth` requests in flight on one uv_loop (libuv runs them on its thread pool, 4 threads by
// default, UV_THREADPOOL_SIZE).
#include <uv.h>

#include <cstdio>
#include <vector>

#include "bench/peers/file_protocol.h"

namespace surge::bench {
namespace {

struct Reader {
  uv_fs_t request;
  uv_buf_t buffer;
  OffsetSource offsets;
  Window::Clock::time_point started;
  int fd;
  Window* window;
  std::size_t block;
  bool* failed;
};

void issue(Reader& reader);

void on_read(uv_fs_t* request) {
  auto* reader = static_cast<Reader*>(request->data);
  const ssize_t result = request->result;
  uv_fs_req_cleanup(request);
  if (result != static_cast<ssize_t>(reader->block)) {
    std::fprintf(stderr, "uv_fs_read: %s\n", result < 0 ? uv_strerror(static_cast<int>(result)) : "short read");
    *reader->failed = true;
    return;
  }
  if (!reader->window->record(reader->started, Window::Clock::now())) return;
  issue(*reader);
}

void issue(Reader& reader) {
  reader.request.data = &reader;
  reader.started = Window::Clock::now();
  const int started = uv_fs_read(uv_default_loop(), &reader.request, reader.fd, &reader.buffer, 1,
                                 static_cast<std::int64_t>(reader.offsets.next()), on_read);
  if (started < 0) {
    std::fprintf(stderr, "uv_fs_read: %s\n", uv_strerror(started));
    *reader.failed = true;
  }
}

}  // namespace
}  // namespace surge::bench

int main(int argc, char** argv) {
  using namespace surge::bench;
  const FileArgs args = parse_file_args(
      argc, argv,
      "libuv_file_bench: libuv's uv_fs_read, random block reads of one file\n"
      "Usage: libuv_file_bench --file=PATH --depth=N --seconds=S [--direct]");
  const int fd = open_file(args);
  Window window(args);
  bool failed = false;
  std::vector<Reader> readers;
  readers.reserve(static_cast<std::size_t>(args.depth));
  for (int i = 0; i < args.depth; ++i) {
    readers.push_back(Reader{{}, uv_buf_init(static_cast<char*>(aligned_block(args.block)), static_cast<unsigned>(args.block)),
                             OffsetSource(args, static_cast<std::uint64_t>(i)), {}, fd, &window, args.block, &failed});
  }
  for (auto& reader : readers) issue(reader);
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  if (failed) return 1;
  window.print("libuv");
  return 0;
}
