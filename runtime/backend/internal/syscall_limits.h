// syscall_limits.h: limits shared by the backends when they turn an Operation into a syscall.
#ifndef SURGE_RUNTIME_BACKEND_INTERNAL_SYSCALL_LIMITS_H_
#define SURGE_RUNTIME_BACKEND_INTERNAL_SYSCALL_LIMITS_H_

#include <cstddef>

namespace surge::internal {

// Linux transfers at most 0x7ffff000 bytes per call (MAX_RW_COUNT), and results travel as int32: longer
// requests are shortened, which callers see as an ordinary short read or write.
inline constexpr std::size_t kMaxIoLength = 0x7ffff000;

constexpr unsigned clamp_io_length(std::size_t length) noexcept {
  return static_cast<unsigned>(length < kMaxIoLength ? length : kMaxIoLength);
}

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_BACKEND_INTERNAL_SYSCALL_LIMITS_H_
