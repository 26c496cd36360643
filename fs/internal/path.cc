#include "fs/internal/path.h"

#include <mutex>
#include <string>
#include <unordered_set>

namespace surge::internal {

const char* error_text(const char* operation, std::string_view path, std::string_view second_path) {
  std::string text = operation;
  text += ' ';
  text += path;
  if (!second_path.empty()) {
    text += " -> ";
    text += second_path;
  }
  // Never freed: an Error may be copied anywhere and outlive anything but the process. Node-based, so
  // c_str() pointers stay valid as the set grows.
  static std::mutex lock;
  static auto* interned = new std::unordered_set<std::string>();
  static std::size_t interned_bytes = 0;
  std::lock_guard guard(lock);
  if (auto found = interned->find(text); found != interned->end()) return found->c_str();
  if (interned_bytes + text.size() > kMaxInternedBytes) return operation;
  interned_bytes += text.size();
  return interned->insert(std::move(text)).first->c_str();
}

}  // namespace surge::internal
