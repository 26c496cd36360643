// options.h: how a backend is set up (BackendOptions) and what it found at set-up (BackendFeatures).
//
// Most fields concern io_uring and say so; the epoll backend reads the few that are generic (the
// per-poll budget, the lent buffers). Pass them through WorkerOptions or RuntimeOptions:
//
//   surge::WorkerOptions options;
//   options.backend_options.allow_fixed_files = false;       // one io_uring feature off
//   options.backend_options.lent_buffers = 1024;             // more buffers for borrowed reads
//   auto worker = surge::Worker::create(options);
//   std::puts((*worker)->features().describe().c_str());   // what the kernel offered, what is used
#ifndef SURGE_RUNTIME_BACKEND_OPTIONS_H_
#define SURGE_RUNTIME_BACKEND_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace surge {

enum class BackendKind : std::uint8_t { kIoUring, kEpoll };

// "io_uring" or "epoll".
const char* backend_name(BackendKind kind) noexcept;

struct BackendOptions {
  // io_uring: submission queue entries. When the queue is full the backend submits and retries, so a
  // small value costs syscalls, never operations.
  unsigned submission_queue_entries = 256;
  // io_uring: completion queue entries. Sized well above the submission queue so that bursts of
  // completions do not spill into the kernel's overflow list (which still loses nothing).
  unsigned completion_queue_entries = 4096;
  // io_uring: try IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN first. The backend must then be
  // created on, and used only from, the thread that runs it.
  bool allow_defer_taskrun = true;
  // io_uring: wake another worker's ring with IORING_OP_MSG_RING where the kernel has it (else eventfd).
  bool allow_msg_ring = true;
  // The I/O budget: at most this many completions are delivered by one poll(), so that tasks already
  // ready get their turn between batches; the rest wait for the next poll (which then does not block).
  unsigned max_completions_per_poll = 256;
  // io_uring: deadlines on single operations as linked timeout SQEs instead of the worker's timer wheel.
  // Off by default: measured slower than the wheel (README, "Runtime overhead": BM_EchoRoundTrip).
  bool allow_linked_timeouts = false;
  // io_uring: serve accepts from one multishot accept request per listener (5.19+): the kernel hands
  // over each new connection without a new SQE. Accepted-but-unclaimed connections queue up to
  // `multishot_accept_backlog`; beyond that the request is stopped (the kernel's listen backlog holds the
  // rest) and re-armed when an accept finds the queue empty. The kernel accepts in passes, each taking
  // all that waits in the listen backlog, so one burst can overshoot the bound by up to that backlog.
  // Accepts that want the peer address or carry a linked timeout use a single-shot SQE.
  bool allow_multishot_accept = true;
  unsigned multishot_accept_backlog = 64;
  // Borrowed-buffer receives (OpCode::kRecvBorrowed, TcpStream::read_borrowed): `lent_buffers` buffers
  // of `lent_buffer_size` bytes per backend, so at most their product is ever lent (io_uring: one
  // provided-buffer ring, filled by one multishot recv per stream; epoll: a pool). When all are lent
  // out, receives wait for one to come back (io_uring counts it in lent_buffers_exhausted).
  unsigned lent_buffers = 256;             // a power of two (io_uring's ring needs one)
  unsigned lent_buffer_size = 16 * 1024;
  // io_uring with a buffer ring: at most this many received chunks wait unclaimed in one stream's queue
  // (each holds a lent buffer, however small the chunk). At the bound the stream's multishot recv is
  // stopped, so the data waits in the socket and TCP's receive window pushes back on the peer; it is
  // armed again when the stream is read. A peer that sends and never gets read thus holds at most this
  // many buffers, never the whole ring; and all streams together stop at half the ring (or at this bound,
  // if larger), so the other half stays for streams whose readers wait. The price is throughput for a
  // stream whose reader is slower than its peer: it stops and restarts where unbounded reads would have
  // queued up to the whole ring (one stream echoing 1 MiB writes: see the README). A bound of
  // lent_buffers or more turns the bounds off, for services whose peers are all trusted.
  unsigned lent_buffers_per_stream = 8;
  bool allow_buffer_ring = true;           // io_uring: else kRecvBorrowed uses a pool and plain recv
  // io_uring: put the fds operations use in a sparse registered-file table of this many slots (5.19+),
  // so that SQEs carry IOSQE_FIXED_FILE. Costs an io_uring_register call when an fd is first used and
  // when it is forgotten; a full table means plain fds for the rest.
  bool allow_fixed_files = true;
  // io_uring: file and path operations (OpCode::kReadAt ...) as io_uring opcodes where the kernel has
  // them; false runs them on the blocking pool, as on a kernel without them (and as epoll always does).
  bool allow_file_opcodes = true;
  unsigned fixed_file_slots = 1024;
  // io_uring: sends of at least this many bytes use IORING_OP_SEND_ZC (6.0+): the kernel sends from the
  // caller's pages instead of copying them, and the operation completes only when it has let go of them
  // (the notification CQE). 0 = never. Off by default: on loopback the kernel copies anyway and zero-copy
  // measured slower here (see the README's fast-path table).
  // Cancelling such a send (cancel(), a deadline, worker shutdown, or forget_fd with it in flight) after
  // the kernel has queued its bytes RESETS THE CONNECTION (connect(AF_UNSPEC)): a queue the peer does not
  // drain would otherwise keep the pages, and the operation, for as long as the peer likes. The send then
  // completes with -ECANCELED once the kernel has let go. A send whose pages the kernel cannot pin
  // (ENOMEM: they count against RLIMIT_MEMLOCK) is sent again by copying, unseen by the caller.
  std::size_t send_zero_copy_threshold = 0;
  // io_uring: a kernel thread polls the submission queue (IORING_SETUP_SQPOLL), so submitting costs no
  // syscall while it is awake; it sleeps after `sqpoll_idle_ms` without work. It needs a spare core: on
  // these 2-core machines it competes with the worker and the peer (see the README's fast-path table).
  // It excludes DEFER_TASKRUN and COOP_TASKRUN. Off by default.
  bool sqpoll = false;
  unsigned sqpoll_idle_ms = 50;
  // For tests: io_uring set-up treats these IORING_SETUP_* flags as if the kernel had refused them
  // (EINVAL), so the fallback ladder can be exercised on a kernel that has every flag.
  unsigned refuse_setup_flags_for_testing = 0;
};

// What a backend found at set-up: io_uring's ring flags and kernel features, and which of the optional
// kernel facilities the kernel offers. Read it with Backend::features(); describe() is the one line the
// io_uring backend logs the first time a process creates a ring.
struct BackendFeatures {
  BackendKind kind = BackendKind::kEpoll;
  unsigned setup_flags = 0;         // io_uring: the IORING_SETUP_* flags the ring runs with
  unsigned kernel_features = 0;     // io_uring: IORING_FEAT_* reported by io_uring_setup
  bool registered_ring_fd = false;  // io_uring: io_uring_enter skips the fd lookup (5.18)
  bool msg_ring = false;            // io_uring: wake_from() uses IORING_OP_MSG_RING (5.18)
  bool linked_timeouts = false;     // io_uring: deadlines as IORING_OP_LINK_TIMEOUT (when enabled)
  bool uses_multishot_accept = false;  // io_uring: accepts served by one multishot request per listener
  bool uses_buffer_ring = false;       // io_uring: borrowed receives from a provided-buffer ring + multishot recv
  bool uses_fixed_files = false;       // io_uring: operations name their fds through a registered file table
  bool uses_send_zc = false;           // io_uring: large sends are IORING_OP_SEND_ZC
  bool uses_file_opcodes = false;      // io_uring: file operations as opcodes (else on the blocking pool)
  // Offered by the kernel (probed opcodes; where a facility has no opcode of its own, the opcode that
  // arrived in the same release stands for it, as the comments in io_uring_backend.cc say).
  bool multishot_accept = false;    // 5.19
  bool buffer_rings = false;        // provided-buffer rings, 5.19
  bool multishot_recv = false;      // 6.0
  bool send_zc = false;             // IORING_OP_SEND_ZC, 6.0
  bool sparse_fixed_files = false;  // a sparse registered-file table, 5.19

  // E.g. "io_uring: setup SINGLE_ISSUER|DEFER_TASKRUN; uses registered ring fd, MSG_RING; kernel offers
  // multishot accept, buffer rings, multishot recv, SEND_ZC, sparse fixed files". "epoll" for epoll.
  std::string describe() const;
};

}  // namespace surge

#endif  // SURGE_RUNTIME_BACKEND_OPTIONS_H_
