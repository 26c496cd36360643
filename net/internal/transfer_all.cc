#include "net/internal/transfer_all.h"

namespace surge::internal {

void TransferAllAwaitable::on_chunk(Operation& operation) noexcept {
  auto& self = static_cast<TransferAllAwaitable&>(operation);
  note_linked_timeout(self);
  if (is_transient(self.result)) {
    self.resubmit();
    return;
  }
  if (self.result > 0) {
    self.transferred_ += static_cast<std::size_t>(self.result);
    if (self.transferred_ < self.total_) {
      self.buffer = self.base_ + self.transferred_;
      self.length = self.total_ - self.transferred_;
      self.resubmit();  // stops here instead if the deadline passed or cancellation was requested
      return;
    }
  }
  // Done: everything moved, an error, or end of stream (result 0).
  self.resume_awaiter();
}

}  // namespace surge::internal
