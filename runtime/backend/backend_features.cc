// BackendFeatures::describe(): the one-line summary of what a backend found at set-up.
#include <linux/io_uring.h>

#include <initializer_list>
#include <string>
#include <utility>

#include "runtime/backend/backend.h"

namespace surge {
namespace {

// Appends the names whose condition holds, joined by `separator`; "none" when none does.
std::string joined(std::initializer_list<std::pair<bool, const char*>> items, const char* separator) {
  std::string text;
  for (const auto& [present, name] : items) {
    if (!present) continue;
    if (!text.empty()) text += separator;
    text += name;
  }
  return text.empty() ? "none" : text;
}

}  // namespace

std::string BackendFeatures::describe() const {
  if (kind == BackendKind::kEpoll) return "epoll";
  const unsigned flags = setup_flags;
  return "io_uring: setup " +
         joined({{(flags & IORING_SETUP_SINGLE_ISSUER) != 0, "SINGLE_ISSUER"},
                 {(flags & IORING_SETUP_DEFER_TASKRUN) != 0, "DEFER_TASKRUN"},
                 {(flags & IORING_SETUP_COOP_TASKRUN) != 0, "COOP_TASKRUN"},
                 {(flags & IORING_SETUP_SQPOLL) != 0, "SQPOLL"}},
                "|") +
         "; uses " +
         joined({{registered_ring_fd, "registered ring fd"},
                 {msg_ring, "MSG_RING"},
                 {linked_timeouts, "linked timeouts"},
                 {uses_multishot_accept, "multishot accept"},
                 {uses_buffer_ring, "buffer ring + multishot recv"},
                 {uses_fixed_files, "fixed files"},
                 {uses_send_zc, "SEND_ZC"},
                 {uses_file_opcodes, "file opcodes"}},
                ", ") +
         "; kernel offers " +
         joined({{multishot_accept, "multishot accept"},
                 {buffer_rings, "buffer rings"},
                 {multishot_recv, "multishot recv"},
                 {send_zc, "SEND_ZC"},
                 {sparse_fixed_files, "sparse fixed files"}},
                ", ");
}

}  // namespace surge
