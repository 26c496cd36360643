// backend_factory.h: choosing and creating a backend.
//
// BackendChoice::kAuto means: the SURGE_BACKEND environment variable if it is set ("auto", "io_uring",
// "epoll"), otherwise io_uring when a ring can be created and every opcode surge needs is supported (found
// by probing), otherwise epoll. Falling back prints one line to stderr, once per process, saying why
// (for example "surge: io_uring unavailable (io_uring_setup: Operation not permitted); using epoll").
// An explicit kIoUring or kEpoll in code wins over the environment variable and never falls back.
//
//   auto backend = surge::make_backend(surge::BackendChoice::kAuto);
//   if (!backend) return backend.error();
#ifndef SURGE_RUNTIME_BACKEND_BACKEND_FACTORY_H_
#define SURGE_RUNTIME_BACKEND_BACKEND_FACTORY_H_

#include <memory>
#include <string_view>

#include "runtime/backend/backend.h"
#include "runtime/result.h"

namespace surge {

enum class BackendChoice : std::uint8_t { kAuto, kIoUring, kEpoll };

// The environment variable consulted by kAuto.
inline constexpr const char* kBackendEnvironmentVariable = "SURGE_BACKEND";

// Parses "auto", "io_uring" (or "uring") and "epoll"; anything else is EINVAL.
Result<BackendChoice> parse_backend_choice(std::string_view text);

const char* backend_choice_name(BackendChoice choice) noexcept;

Result<std::unique_ptr<Backend>> make_backend(BackendChoice choice, const BackendOptions& options = {});

}  // namespace surge

#endif  // SURGE_RUNTIME_BACKEND_BACKEND_FACTORY_H_
