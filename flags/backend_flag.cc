#include "flags/backend_flag.h"

#include <string_view>

namespace surge {

bool AbslParseFlag(absl::string_view text, BackendChoice* choice, std::string* error) {
  auto parsed = parse_backend_choice(std::string_view(text.data(), text.size()));
  if (!parsed) {
    *error = parsed.error().operation();  // "parse backend: expected auto, io_uring or epoll"
    return false;
  }
  *choice = *parsed;
  return true;
}

std::string AbslUnparseFlag(BackendChoice choice) { return backend_choice_name(choice); }

}  // namespace surge
