// status.h: surge::Error and Result<T> as absl::Status and absl::StatusOr<T>, for code built on abseil.
//
// The I/O path keeps returning Result<T> (runtime/result.h: an errno and the operation, no allocation).
// Code above it that speaks abseil converts where the two meet; the conversion allocates (the message and
// the payload), so do it once per request, not per read.
//
//   surge::Result<std::size_t> n = co_await stream.read(buffer);
//   absl::StatusOr<std::size_t> read = surge::to_status_or(std::move(n));
//   if (absl::IsUnavailable(read.status())) ...           // ECONNRESET: "recv: Connection reset by peer"
//   std::optional<int> code = surge::errno_of(read.status());  // ECONNRESET again, from the payload
//
// The code is the closest absl::StatusCode to the errno (status_code_for_errno), the message is
// Error::message(), and the errno travels as a payload under kErrnoPayloadUrl (its decimal value), so a
// caller can still tell ECONNRESET from EPIPE. This is a separate target from //runtime:error so that the
// runtime itself does not link abseil.
#ifndef SURGE_RUNTIME_STATUS_H_
#define SURGE_RUNTIME_STATUS_H_

#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/error.h"
#include "runtime/result.h"

namespace surge {

// The payload type URL under which to_status() stores the errno, as decimal text.
inline constexpr absl::string_view kErrnoPayloadUrl = "type.surge/errno";

// The closest absl::StatusCode to a positive errno value:
//   ENOENT -> kNotFound; EACCES, EPERM -> kPermissionDenied; ETIME, ETIMEDOUT -> kDeadlineExceeded;
//   ECANCELED -> kCancelled; EINVAL, EBADF, ENOTSOCK -> kInvalidArgument; EEXIST -> kAlreadyExists;
//   ENOSPC, ENOMEM, ENOBUFS, EMFILE, ENFILE, EDQUOT -> kResourceExhausted;
//   EAGAIN, EINTR, EBUSY, ECONNRESET, ECONNREFUSED, ECONNABORTED, EPIPE, ENOTCONN, ESHUTDOWN, EADDRINUSE,
//   EADDRNOTAVAIL, ENETDOWN, ENETUNREACH, ENETRESET, EHOSTDOWN, EHOSTUNREACH -> kUnavailable;
//   ENOTSUP (= EOPNOTSUPP), ENOSYS, EAFNOSUPPORT, EPROTONOSUPPORT -> kUnimplemented;
//   ENODATA (surge: the stream ended before read_exact's bytes arrived) -> kOutOfRange;
//   anything else, 0 included (an Error is never success), -> kUnknown.
absl::StatusCode status_code_for_errno(int code) noexcept;

// The error as a non-OK status: status_code_for_errno(error.code()), error.message(), and the errno as
// the kErrnoPayloadUrl payload.
absl::Status to_status(const Error& error);

// OK, or to_status(result.error()). Takes a TransferResult too (the byte count is dropped).
absl::Status to_status(const Result<void>& result);

// The value (moved or copied out of `result`), or to_status(result.error()).
template <typename T>
absl::StatusOr<T> to_status_or(Result<T>&& result) {
  if (!result) return to_status(result.error());
  return std::move(result).value();
}
template <typename T>
absl::StatusOr<T> to_status_or(const Result<T>& result) {
  if (!result) return to_status(result.error());
  return result.value();
}

// The errno that to_status() stored in `status`, or nullopt when it carries none (an OK status, or one
// that did not come from a surge::Error).
std::optional<int> errno_of(const absl::Status& status);

}  // namespace surge

#endif  // SURGE_RUNTIME_STATUS_H_
