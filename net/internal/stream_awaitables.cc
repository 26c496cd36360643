#include "net/internal/stream_awaitables.h"

#include <sys/socket.h>

#include <cerrno>

namespace surge::internal {

TransferResult StreamReadExactAwaitable::await_resume() const noexcept {
  if (refused()) return TransferResult(Error(EINVAL, kMixedReads), 0);
  if (transferred() == total()) return TransferResult(total());
  if (last_result() < 0) return TransferResult(error_for(last_result(), "recv"), transferred());
  return TransferResult(Error(ENODATA, "read_exact: stream ended before the buffer was full"), transferred());
}

TransferResult StreamWriteAllAwaitable::await_resume() const noexcept {
  if (transferred() == total()) return TransferResult(total());
  if (last_result() < 0) return TransferResult(error_for(last_result(), "send"), transferred());
  return TransferResult(Error(EIO, "write_all: send made no progress"), transferred());
}

Result<void> shutdown_socket(int fd, Shutdown how) noexcept {
  if (::shutdown(fd, static_cast<int>(how)) < 0) return Error(errno, "shutdown");
  return ok();
}

}  // namespace surge::internal
