// backend_flag.h: surge::BackendChoice as an absl flag type, for the programs' --backend.
//
//   #include "flags/backend_flag.h"
//   ABSL_FLAG(surge::BackendChoice, backend, surge::BackendChoice::kAuto, "auto, io_uring or epoll");
//   ...
//   auto worker = surge::Worker::create({.backend = absl::GetFlag(FLAGS_backend)});
//
// Accepts what parse_backend_choice() accepts ("auto", "io_uring" or "uring", "epoll"); anything else is a
// parse error that absl reports with the flag's name ("Illegal value 'kqueue' specified for flag
// 'backend'; ...") before main goes on.
#ifndef SURGE_FLAGS_BACKEND_FLAG_H_
#define SURGE_FLAGS_BACKEND_FLAG_H_

#include <string>

#include "absl/strings/string_view.h"
#include "runtime/backend/backend_factory.h"

namespace surge {

// Found by absl through argument-dependent lookup, so they live in BackendChoice's namespace.
bool AbslParseFlag(absl::string_view text, BackendChoice* choice, std::string* error);
std::string AbslUnparseFlag(BackendChoice choice);

}  // namespace surge

#endif  // SURGE_FLAGS_BACKEND_FLAG_H_
