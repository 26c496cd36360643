// result.h: Result<T>, a value or an Error, returned by every fallible surge call.
//
// No exceptions cross the I/O path: a failed operation returns an Error (errno + what was being done).
// Result is [[nodiscard]] so a dropped failure is a compiler warning.
//
//   surge::Result<surge::TcpStream> stream = co_await surge::TcpStream::connect(addr);
//   if (!stream) co_return stream.error();
//   co_await stream->write_all(payload);
//
// Result<void> carries only success or an Error.
#ifndef SURGE_RUNTIME_RESULT_H_
#define SURGE_RUNTIME_RESULT_H_

#include <cassert>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <variant>

#include "runtime/error.h"

namespace surge {

template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<T, Error>, "Result<Error> is ambiguous");

 public:
  Result(const T& value) : storage_(std::in_place_index<0>, value) {}                // NOLINT: implicit
  Result(T&& value) : storage_(std::in_place_index<0>, std::move(value)) {}          // NOLINT: implicit
  Result(Error error) noexcept : storage_(std::in_place_index<1>, error) {}          // NOLINT: implicit

  bool ok() const noexcept { return storage_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // Precondition for these accessors: ok(). Checked in debug builds.
  T& value() & { assert(ok()); return *std::get_if<0>(&storage_); }
  const T& value() const& { assert(ok()); return *std::get_if<0>(&storage_); }
  T&& value() && { assert(ok()); return std::move(*std::get_if<0>(&storage_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // Precondition: !ok().
  const Error& error() const { assert(!ok()); return *std::get_if<1>(&storage_); }

 private:
  std::variant<T, Error> storage_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() noexcept = default;
  Result(Error error) noexcept : error_(error), failed_(true) {}  // NOLINT: implicit

  bool ok() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return ok(); }

  // Precondition: !ok().
  const Error& error() const { assert(failed_); return error_; }

 private:
  Error error_{0, nullptr};
  bool failed_ = false;
};

// What an operation that moves a whole buffer in several steps (read_exact, write_all) returns: a
// Result<void> that also says how many bytes had moved when it ended, all of them on success, fewer when
// an error, a deadline or a cancellation stopped it midway, so that a caller can keep its framing.
// Converts to Result<void> where only success matters.
//
//   auto sent = co_await stream.write_all(frame);
//   if (!sent) log(sent.error().message(), " after ", sent.transferred(), " of ", frame.size(), " bytes");
class [[nodiscard]] TransferResult : public Result<void> {
 public:
  explicit TransferResult(std::size_t transferred) noexcept : transferred_(transferred) {}
  TransferResult(Error error, std::size_t transferred) noexcept : Result<void>(error), transferred_(transferred) {}

  std::size_t transferred() const noexcept { return transferred_; }

 private:
  std::size_t transferred_;
};

// The success value of a Result<void>, for `co_return surge::ok();`.
inline Result<void> ok() noexcept { return {}; }

}  // namespace surge

#endif  // SURGE_RUNTIME_RESULT_H_
