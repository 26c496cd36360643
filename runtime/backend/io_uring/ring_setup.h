// ring_setup.h (internal): setting an io_uring up and finding out what the kernel offers.
//
// open() walks a ladder of flag sets, best first, stepping down when the kernel answers EINVAL:
//   [SQPOLL|SINGLE_ISSUER -> SQPOLL, with BackendOptions::sqpoll] -> SINGLE_ISSUER|DEFER_TASKRUN
//   -> COOP_TASKRUN -> no flags.
// probe() asks the ring which opcodes the kernel has: the ones the backend cannot do without, and the
// ones that stand for the optional facilities (see KernelOffers).
//
//   io_uring ring;
//   auto setup = internal::open_ring(ring, options);          // Result<RingSetup>: flags, kernel features
//   if (!setup) return setup.error();                          // EPERM, ENOSYS, ENOMEM...: no io_uring
//   auto offers = internal::probe_kernel(ring);                // Result<KernelOffers>; ENOTSUP if a needed
//                                                              // opcode is missing
// Threads: the thread that will own the ring (DEFER_TASKRUN binds it to its creator).
#ifndef SURGE_RUNTIME_BACKEND_IO_URING_RING_SETUP_H_
#define SURGE_RUNTIME_BACKEND_IO_URING_RING_SETUP_H_

#include <liburing.h>

#include "runtime/backend/options.h"
#include "runtime/result.h"

namespace surge::internal {

struct RingSetup {
  unsigned setup_flags = 0;      // the IORING_SETUP_* flags the ring runs with
  unsigned kernel_features = 0;  // IORING_FEAT_* reported by io_uring_setup
};

// Sets `ring` up with the first flag set of the ladder the kernel accepts (skipping DEFER_TASKRUN when
// options.allow_defer_taskrun is off, and the flags in options.refuse_setup_flags_for_testing). On
// failure `ring` is untouched and the error is the kernel's (from the last step tried).
Result<RingSetup> open_ring(io_uring& ring, const BackendOptions& options) noexcept;

// What the kernel offers, by probed opcode. Where a facility has no opcode of its own, the opcode that
// arrived in the same release stands for it.
struct KernelOffers {
  bool msg_ring = false;       // IORING_OP_MSG_RING (5.18)
  bool link_timeout = false;   // IORING_OP_LINK_TIMEOUT
  bool since_5_19 = false;     // IORING_OP_SOCKET: multishot accept, buffer rings, sparse file tables
  bool send_zc = false;        // IORING_OP_SEND_ZC (6.0), and with it multishot recv
  // The file and path operations (OpCode::kReadAt ...) this kernel has opcodes for: bit 1 << opcode.
  std::uint32_t file_operations = 0;
};

// Probes `ring`. ENOTSUP if the kernel cannot probe, or lacks an opcode the backend needs (accept,
// connect, recv, send, read, write, poll, cancel, close).
Result<KernelOffers> probe_kernel(io_uring& ring) noexcept;

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_BACKEND_IO_URING_RING_SETUP_H_
