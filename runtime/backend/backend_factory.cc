#include "runtime/backend/backend_factory.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "runtime/backend/epoll/epoll_backend.h"
#include "runtime/backend/io_uring/io_uring_backend.h"

namespace surge {

const char* backend_name(BackendKind kind) noexcept {
  return kind == BackendKind::kIoUring ? "io_uring" : "epoll";
}

const char* backend_choice_name(BackendChoice choice) noexcept {
  switch (choice) {
    case BackendChoice::kAuto: return "auto";
    case BackendChoice::kIoUring: return "io_uring";
    case BackendChoice::kEpoll: return "epoll";
  }
  return "unknown";
}

Result<BackendChoice> parse_backend_choice(std::string_view text) {
  if (text == "auto") return BackendChoice::kAuto;
  if (text == "io_uring" || text == "uring") return BackendChoice::kIoUring;
  if (text == "epoll") return BackendChoice::kEpoll;
  return Error(EINVAL, "parse backend: expected auto, io_uring or epoll");
}

namespace {

Result<std::unique_ptr<Backend>> make_io_uring(const BackendOptions& options) {
  auto backend = IoUringBackend::create(options);
  if (!backend) return backend.error();
  return std::unique_ptr<Backend>(std::move(*backend));
}

Result<std::unique_ptr<Backend>> make_epoll(const BackendOptions& options) {
  auto backend = EpollBackend::create(options);
  if (!backend) return backend.error();
  return std::unique_ptr<Backend>(std::move(*backend));
}

void log_fallback_once(const Error& why) {
  static std::once_flag logged;
  std::call_once(logged, [&why] {
    std::fprintf(stderr, "surge: io_uring unavailable (%s); using epoll\n", why.message().c_str());
  });
}

}  // namespace

Result<std::unique_ptr<Backend>> make_backend(BackendChoice choice, const BackendOptions& options) {
  if (choice == BackendChoice::kAuto) {
    if (const char* from_environment = std::getenv(kBackendEnvironmentVariable);
        from_environment != nullptr && *from_environment != '\0') {
      auto parsed = parse_backend_choice(from_environment);
      if (!parsed) return Error(EINVAL, "SURGE_BACKEND: expected auto, io_uring or epoll");
      choice = *parsed;
    }
  }
  switch (choice) {
    case BackendChoice::kIoUring:
      return make_io_uring(options);
    case BackendChoice::kEpoll:
      return make_epoll(options);
    case BackendChoice::kAuto:
      break;
  }
  auto io_uring = make_io_uring(options);
  if (io_uring) return io_uring;
  log_fallback_once(io_uring.error());
  return make_epoll(options);
}

}  // namespace surge
