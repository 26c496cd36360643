// remote_inbox.h: how other threads hand work to a worker: a lock-free multi-producer, single-consumer
// queue of intrusive RemoteWork items.
//
// Producers push one item with one CAS; the worker takes everything with one exchange and runs it in
// the order it was pushed (a batch per loop turn). Items are intrusive, so posting allocates nothing:
// the node lives in whatever is being handed over (a spawned task's root frame, a join waiter, a
// finished blocking call).
#ifndef SURGE_RUNTIME_INTERNAL_REMOTE_INBOX_H_
#define SURGE_RUNTIME_INTERNAL_REMOTE_INBOX_H_

#include <atomic>

namespace surge {

class Worker;

namespace internal {

struct RemoteWork {
  using RunFn = void (*)(RemoteWork& work, Worker& worker) noexcept;
  RunFn run = nullptr;  // called on the receiving worker's thread
  RemoteWork* next = nullptr;
};

class RemoteInbox {
 public:
  // Any thread. The CAS is seq_cst: it is one half of the sleep/wake handshake in Worker (see there).
  void push(RemoteWork& work) noexcept {
    RemoteWork* head = head_.load(std::memory_order_relaxed);
    do {
      work.next = head;
    } while (!head_.compare_exchange_weak(head, &work, std::memory_order_seq_cst, std::memory_order_relaxed));
  }

  // Owning worker only: everything pushed so far, oldest first.
  RemoteWork* take_all() noexcept {
    RemoteWork* newest_first = head_.exchange(nullptr, std::memory_order_seq_cst);
    RemoteWork* oldest_first = nullptr;
    while (newest_first != nullptr) {
      RemoteWork* next = newest_first->next;
      newest_first->next = oldest_first;
      oldest_first = newest_first;
      newest_first = next;
    }
    return oldest_first;
  }

  // seq_cst: the other half of the sleep/wake handshake.
  bool empty() const noexcept { return head_.load(std::memory_order_seq_cst) == nullptr; }

  // A cheap, possibly stale peek for the busy loop; whatever it misses is seen on a later turn, and
  // never missed before sleeping (the handshake uses empty()).
  bool maybe_nonempty() const noexcept { return head_.load(std::memory_order_relaxed) != nullptr; }

 private:
  std::atomic<RemoteWork*> head_{nullptr};
};

}  // namespace internal
}  // namespace surge

#endif  // SURGE_RUNTIME_INTERNAL_REMOTE_INBOX_H_
