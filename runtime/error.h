// error.h: the error value every fallible surge operation returns.
//
// An Error is an errno plus a short static description of what was being done ("connect", "recv",
// "parse socket address: port out of range"). It is cheap to copy (no allocation), so it can travel on the
// I/O path, and it converts to std::error_code for code that already speaks that language.
//
//   surge::Result<size_t> n = co_await stream.read(buf);
//   if (!n) {
//     if (n.error().is_cancelled()) co_return;       // distinct outcome, not a generic failure
//     LOG(WARNING) << n.error().message();           // "recv: Connection reset by peer"
//   }
#ifndef SURGE_RUNTIME_ERROR_H_
#define SURGE_RUNTIME_ERROR_H_

#include <cerrno>
#include <string>
#include <system_error>

namespace surge {

class Error {
 public:
  // `code` is a positive errno value; `operation` must outlive the error (use a string literal).
  constexpr Error(int code, const char* operation) noexcept : code_(code), operation_(operation) {}

  // Builds an Error from a syscall-style result: `negative_errno` is -errno, as io_uring reports it.
  static constexpr Error from_result(int negative_errno, const char* operation) noexcept {
    return Error(-negative_errno, operation);
  }

  constexpr int code() const noexcept { return code_; }
  constexpr const char* operation() const noexcept { return operation_; }
  std::error_code error_code() const noexcept { return {code_, std::system_category()}; }

  // The operation was cancelled before it completed (ECANCELED).
  constexpr bool is_cancelled() const noexcept { return code_ == ECANCELED; }
  // A deadline passed before the operation completed (ETIMEDOUT).
  constexpr bool is_timed_out() const noexcept { return code_ == ETIMEDOUT; }
  // The peer ended the stream before the bytes a read_exact asked for arrived.
  constexpr bool is_unexpected_eof() const noexcept { return code_ == ENODATA; }

  // "operation: strerror(code)", e.g. "connect: Connection refused".
  std::string message() const;

  friend constexpr bool operator==(const Error& a, const Error& b) noexcept {
    return a.code_ == b.code_;
  }

 private:
  int code_;
  const char* operation_;
};

}  // namespace surge

#endif  // SURGE_RUNTIME_ERROR_H_
