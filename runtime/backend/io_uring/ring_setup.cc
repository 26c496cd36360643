#include "runtime/backend/io_uring/ring_setup.h"

#include <utility>

#include "runtime/backend/operation.h"

#include <cerrno>
#include <iterator>
#include <vector>

namespace surge::internal {
namespace {

// Flag sets tried in order; the kernel answers EINVAL for flags it does not know.
constexpr unsigned kSetupLadder[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    IORING_SETUP_COOP_TASKRUN,
    0,
};
// With BackendOptions::sqpoll, tried before the ladder above (SQPOLL combines with neither DEFER_TASKRUN
// nor COOP_TASKRUN); where the kernel refuses both, the ordinary ladder follows.
constexpr unsigned kSqpollLadder[] = {
    IORING_SETUP_SQPOLL | IORING_SETUP_SINGLE_ISSUER,
    IORING_SETUP_SQPOLL,
};

constexpr int kRequiredOpcodes[] = {
    IORING_OP_ACCEPT, IORING_OP_CONNECT, IORING_OP_RECV,       IORING_OP_SEND,
    IORING_OP_READ,   IORING_OP_WRITE,   IORING_OP_POLL_ADD,   IORING_OP_ASYNC_CANCEL,
    IORING_OP_CLOSE,  IORING_OP_SENDMSG, IORING_OP_RECVMSG,
};

// The io_uring opcode of each file and path operation.
constexpr std::pair<OpCode, int> kFileOpcodes[] = {
    {OpCode::kReadAt, IORING_OP_READ},         {OpCode::kWriteAt, IORING_OP_WRITE},
    {OpCode::kReadvAt, IORING_OP_READV},       {OpCode::kWritevAt, IORING_OP_WRITEV},
    {OpCode::kFsync, IORING_OP_FSYNC},         {OpCode::kFallocate, IORING_OP_FALLOCATE},
    {OpCode::kOpenAt, IORING_OP_OPENAT},       {OpCode::kStatx, IORING_OP_STATX},
    {OpCode::kRenameAt, IORING_OP_RENAMEAT},   {OpCode::kUnlinkAt, IORING_OP_UNLINKAT},
    {OpCode::kMkdirAt, IORING_OP_MKDIRAT},
};

}  // namespace

Result<RingSetup> open_ring(io_uring& ring, const BackendOptions& options) noexcept {
  int status = -EINVAL;
  std::vector<unsigned> ladder;
  if (options.sqpoll) ladder.assign(std::begin(kSqpollLadder), std::end(kSqpollLadder));
  ladder.insert(ladder.end(), std::begin(kSetupLadder), std::end(kSetupLadder));
  for (unsigned flags : ladder) {
    if ((flags & IORING_SETUP_DEFER_TASKRUN) != 0 && !options.allow_defer_taskrun) continue;
    if ((flags & options.refuse_setup_flags_for_testing) != 0) {
      status = -EINVAL;  // as a kernel without these flags would answer
      continue;
    }
    io_uring_params params{};
    params.flags = flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    params.cq_entries = options.completion_queue_entries;
    params.sq_thread_idle = options.sqpoll_idle_ms;
    status = io_uring_queue_init_params(options.submission_queue_entries, &ring, &params);
    if (status == 0) return RingSetup{.setup_flags = params.flags, .kernel_features = params.features};
    // EPERM, ENOSYS, ENOMEM: io_uring itself is unavailable. (An SQPOLL ring that is refused for want of
    // privilege still leaves the ordinary ladder to try.)
    if (status != -EINVAL && !((flags & IORING_SETUP_SQPOLL) != 0 && status == -EPERM)) break;
  }
  return Error::from_result(status, "io_uring_setup");
}

Result<KernelOffers> probe_kernel(io_uring& ring) noexcept {
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  if (probe == nullptr) return Error(ENOTSUP, "io_uring probe: IORING_REGISTER_PROBE unsupported");
  bool all_supported = true;
  for (int opcode : kRequiredOpcodes) all_supported = all_supported && io_uring_opcode_supported(probe, opcode);
  KernelOffers offers;
  offers.msg_ring = io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
  offers.link_timeout = io_uring_opcode_supported(probe, IORING_OP_LINK_TIMEOUT);
  offers.since_5_19 = io_uring_opcode_supported(probe, IORING_OP_SOCKET);
  offers.send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
  for (const auto& [operation, opcode] : kFileOpcodes) {
    if (io_uring_opcode_supported(probe, opcode)) offers.file_operations |= 1u << static_cast<unsigned>(operation);
  }
  io_uring_free_probe(probe);
  if (!all_supported) return Error(ENOTSUP, "io_uring probe: a required opcode is missing");
  return offers;
}

}  // namespace surge::internal
