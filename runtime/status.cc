#include "runtime/status.h"

#include <cerrno>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace surge {

absl::StatusCode status_code_for_errno(int code) noexcept {
  switch (code) {
    case ENOENT:
      return absl::StatusCode::kNotFound;
    case EACCES:
    case EPERM:
      return absl::StatusCode::kPermissionDenied;
    case ETIME:
    case ETIMEDOUT:
      return absl::StatusCode::kDeadlineExceeded;
    case ECANCELED:
      return absl::StatusCode::kCancelled;
    case EINVAL:
    case EBADF:
    case ENOTSOCK:
      return absl::StatusCode::kInvalidArgument;
    case EEXIST:
      return absl::StatusCode::kAlreadyExists;
    case ENOSPC:
    case ENOMEM:
    case ENOBUFS:
    case EMFILE:
    case ENFILE:
    case EDQUOT:
      return absl::StatusCode::kResourceExhausted;
    case EAGAIN:  // == EWOULDBLOCK
    case EINTR:
    case EBUSY:
    case ECONNRESET:
    case ECONNREFUSED:
    case ECONNABORTED:
    case EPIPE:
    case ENOTCONN:
    case ESHUTDOWN:
    case EADDRINUSE:
    case EADDRNOTAVAIL:
    case ENETDOWN:
    case ENETUNREACH:
    case ENETRESET:
    case EHOSTDOWN:
    case EHOSTUNREACH:
      return absl::StatusCode::kUnavailable;
    case ENOTSUP:  // == EOPNOTSUPP
    case ENOSYS:
    case EAFNOSUPPORT:
    case EPROTONOSUPPORT:
      return absl::StatusCode::kUnimplemented;
    case ENODATA:
      return absl::StatusCode::kOutOfRange;
    default:
      return absl::StatusCode::kUnknown;
  }
}

absl::Status to_status(const Error& error) {
  absl::Status status(status_code_for_errno(error.code()), error.message());
  status.SetPayload(kErrnoPayloadUrl, absl::Cord(absl::StrCat(error.code())));
  return status;
}

absl::Status to_status(const Result<void>& result) {
  return result ? absl::OkStatus() : to_status(result.error());
}

std::optional<int> errno_of(const absl::Status& status) {
  const auto payload = status.GetPayload(kErrnoPayloadUrl);  // absl::optional: Debian builds abseil without std::optional
  int code = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &code)) return std::nullopt;
  return code;
}

}  // namespace surge
