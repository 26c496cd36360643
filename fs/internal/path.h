// path.h (internal): what fs/ needs around paths: a NUL-terminated copy that lives in an awaitable, and
// error texts that name the path.
//
// PathCopy: the path operations take std::string_view, which need not be NUL-terminated, while the
// kernel wants a C string that stays put until the operation completes (io_uring reads it when the
// SQE is issued, perhaps from a worker thread of its own). So every path awaitable keeps its own copy:
// up to kInline bytes inside the awaitable (no allocation for ordinary paths), longer ones on the heap.
// Copying always, instead of borrowing a caller's C string, keeps the awaitable valid however it is
// held; it costs a memcpy next to a syscall.
//
// error_text(): surge::Error carries a `const char*` that must outlive it (cheap to copy, no
// allocation on the I/O path). A failed path operation still names its path ("openat /x/y: No such
// file or directory"): the text "operation path" is interned, deduplicated, for the life of the
// process, and only on the error path. Bounded (kMaxInternedBytes): past that an error names only the
// operation, so a process failing on endless distinct paths does not grow without bound.
#ifndef SURGE_FS_INTERNAL_PATH_H_
#define SURGE_FS_INTERNAL_PATH_H_

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace surge::internal {

class PathCopy {
 public:
  static constexpr std::size_t kInline = 104;

  explicit PathCopy(std::string_view path) { assign(path); }
  PathCopy(const PathCopy&) = delete;
  PathCopy& operator=(const PathCopy&) = delete;

  // NUL-terminated, stable while this object lives.
  const char* c_str() const noexcept { return heap_ ? heap_.get() : inline_; }
  std::string_view view() const noexcept { return {c_str(), size_}; }
  // A path with a NUL inside cannot reach the kernel whole (it would name another file): refused.
  bool has_embedded_nul() const noexcept { return embedded_nul_; }

 private:
  void assign(std::string_view path) {
    size_ = path.size();
    embedded_nul_ = path.find('\0') != std::string_view::npos;
    char* target = inline_;
    if (path.size() >= kInline) {
      heap_ = std::make_unique<char[]>(path.size() + 1);
      target = heap_.get();
    }
    if (!path.empty()) std::memcpy(target, path.data(), path.size());
    target[path.size()] = '\0';
  }

  std::unique_ptr<char[]> heap_;
  std::size_t size_ = 0;
  bool embedded_nul_ = false;
  char inline_[kInline];
};

inline constexpr std::size_t kMaxInternedBytes = 1 << 20;

// "operation path" (or "operation from -> to" with `second_path`), as a string that lives as long as the
// process; `operation` alone once kMaxInternedBytes of such texts exist. Any thread.
const char* error_text(const char* operation, std::string_view path, std::string_view second_path = {});

}  // namespace surge::internal

#endif  // SURGE_FS_INTERNAL_PATH_H_
