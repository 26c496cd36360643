// borrowed_buffer.h: BorrowedBuffer, bytes the runtime received into a buffer it lent, for readers that
// look at data where it landed instead of having it copied into their own buffer
// (TcpStream::read_borrowed). Move-only; the buffer goes back to its worker's set of lent buffers when
// the BorrowedBuffer is destroyed or release()d. That may happen on any thread (say, after the buffer
// was returned through a JoinHandle to a task on another worker): off its worker's thread the release is
// posted to that worker; after the worker is gone it is a no-op (the buffers went with it; the data it pointed
// to too), reported like other objects that outlive their worker (surge::outlived_worker_reports()).
//
//   auto chunk = co_await stream.read_borrowed();
//   if (!chunk) co_return chunk.error();
//   if (chunk->empty()) co_return ok();          // end of stream
//   consume(chunk->bytes());                     // valid until `chunk` is released
//
// Every worker lends a bounded number of buffers (BackendOptions::lent_buffers × lent_buffer_size):
// holding many for long makes other streams' borrowed reads wait, never fail or lose data.
#ifndef SURGE_NET_BORROWED_BUFFER_H_
#define SURGE_NET_BORROWED_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "runtime/worker.h"

namespace surge {

class BorrowedBuffer {
 public:
  // Empty: what read_borrowed() returns at end of stream.
  BorrowedBuffer() noexcept = default;
  BorrowedBuffer(Worker& lender, std::uint32_t id, const std::byte* data, std::size_t size) noexcept
      : lender_(&lender), lender_incarnation_(internal::WorkerAccess::incarnation(lender)), id_(id), data_(data), size_(size) {}

  BorrowedBuffer(BorrowedBuffer&& other) noexcept
      : lender_(std::exchange(other.lender_, nullptr)),
        lender_incarnation_(other.lender_incarnation_),
        id_(other.id_),
        data_(other.data_),
        size_(other.size_) {}
  BorrowedBuffer& operator=(BorrowedBuffer&& other) noexcept {
    if (this != &other) {
      release();
      lender_ = std::exchange(other.lender_, nullptr);
      lender_incarnation_ = other.lender_incarnation_;
      id_ = other.id_;
      data_ = other.data_;
      size_ = other.size_;
    }
    return *this;
  }
  BorrowedBuffer(const BorrowedBuffer&) = delete;
  BorrowedBuffer& operator=(const BorrowedBuffer&) = delete;
  ~BorrowedBuffer() { release(); }

  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

  // Gives the buffer back now; afterwards this is empty. Idempotent.
  void release() noexcept {
    if (lender_ != nullptr) {
      Worker* const lender = std::exchange(lender_, nullptr);
      // (The worker running here is alive: comparing its incarnation is safe, and tells a successor at
      // the same address apart.)
      if (Worker::current() == lender && internal::WorkerAccess::incarnation(*lender) == lender_incarnation_) {
        internal::WorkerAccess::backend(*lender).release_buffer(id_);
      } else {  // maybe away from home (see the top of this file); a gone worker took its buffers along
        const bool home = internal::WorkerAccess::run_at_home(
            lender, lender_incarnation_,
            [](Worker& worker, std::uint64_t id) noexcept {
              internal::WorkerAccess::backend(worker).release_buffer(static_cast<std::uint32_t>(id));
            },
            id_);
        if (!home) internal::WorkerAccess::report_outlived("BorrowedBuffer");
      }
    }
    data_ = nullptr;
    size_ = 0;
  }

 private:
  Worker* lender_ = nullptr;
  std::uint64_t lender_incarnation_ = 0;  // which worker at that address lent it (Worker::incarnation)
  std::uint32_t id_ = 0;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace surge

#endif  // SURGE_NET_BORROWED_BUFFER_H_
