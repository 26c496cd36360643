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
  }
  return "unknown operation";
}

}  // namespace surge
