#include "runtime/backend/operation.h"

namespace surge {

const char* opcode_name(OpCode opcode) noexcept {
  switch (opcode) {
    case OpCode::kAccept: return "accept";
    case OpCode::kConnect: return "connect";
    case OpCode::kRecv: return "recv";
    case OpCode::kSend: return "send";
    case OpCode::kRead: return "read";
    case OpCode::kWrite: return "write";
    case OpCode::kClose: return "close";
    case OpCode::kRecvBorrowed: return "recv";
    case OpCode::kSendMsg: return "sendmsg";
    case OpCode::kRecvMsg: return "recvmsg";
    case OpCode::kRecvMsgBorrowed: return "recvmsg";
    case OpCode::kReadAt: return "pread";
    case OpCode::kWriteAt: return "pwrite";
    case OpCode::kReadvAt: return "preadv";
    case OpCode::kWritevAt: return "pwritev";
    case OpCode::kFsync: return "fsync";
    case OpCode::kFallocate: return "fallocate";
    case OpCode::kOpenAt: return "openat";
    case OpCode::kStatx: return "statx";
    case OpCode::kRenameAt: return "renameat";
    case OpCode::kUnlinkAt: return "unlinkat";
    case OpCode::kMkdirAt: return "mkdirat";
  }
  return "unknown operation";
}

}  // namespace surge
