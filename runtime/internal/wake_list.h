// wake_list.h (internal): WakeList, how a task suspended on one worker is woken from another thread.
//
// A sync primitive (sync/) that hands a lock, a permit or a message to a task waiting on another worker
// cannot resume it there: it puts the waiter's WakeNode on that worker's WakeList, and the worker
// schedules every listed coroutine at the start of its next turn. The list is posted to the worker's
// inbox once per burst (one RemoteWork owned by the worker, so posting allocates nothing and many
// wake-ups share one inbox push and at most one wake-up syscall: MSG_RING or the eventfd).
//
// Why a list instead of a RemoteWork in each waiter: a waiter's frame can be destroyed (its worker shuts
// down) after it was chosen but before its wake-up ran. A node inside the inbox cannot be taken out again;
// a node on this list can (remove(), on the owner thread), so nothing ever points into a dead frame.
//
// Threads: push() from any thread; remove() and drain() on the owning worker's thread only.
#ifndef SURGE_RUNTIME_INTERNAL_WAKE_LIST_H_
#define SURGE_RUNTIME_INTERNAL_WAKE_LIST_H_

#include <coroutine>
#include <mutex>
#include <thread>

#include "runtime/internal/intrusive_list.h"
#include "runtime/internal/spin_lock.h"

namespace surge::internal {

// Lives in the waiting awaiter. previous/next link it into one list at a time: the primitive's wait list
// while it waits (guarded by the primitive's lock), then a worker's WakeList (guarded by that list's lock).
struct WakeNode {
  WakeNode* previous = nullptr;
  WakeNode* next = nullptr;
  std::coroutine_handle<> coroutine = nullptr;
  bool listed = false;  // on a WakeList: guarded by that list's lock
  // Chosen by a waker on another thread, which will push() it once it has let go of the primitive's
  // lock: set under that lock, cleared by push() under the list's lock. While it is set, the node must
  // not be freed (see WakeList::remove_when_pushed).
  bool in_transit = false;
};

using WakeNodeList = IntrusiveList<WakeNode, &WakeNode::previous, &WakeNode::next>;

class WakeList {
 public:
  // Any thread. Lists `node`; returns true when the caller must post the worker's drain work (the list was
  // not already posted), false when a drain is already on its way and will see `node`.
  bool push(WakeNode& node) noexcept {
    std::lock_guard guard(lock_);
    node.in_transit = false;  // the waker's last touch of the node: the owner may free it after this
    node.listed = true;
    nodes_.push_back(node);
    const bool post = !posted_;
    posted_ = true;
    return post;
  }

  // Owner thread, for a node whose frame is being destroyed after a waker on another thread chose it:
  // waits until that waker has pushed it (in_transit: a few instructions, unless the waker's thread was
  // preempted), then takes it off the list if the drain has not run yet. Returns whether it was listed.
  bool remove_when_pushed(WakeNode& node) noexcept {
    for (;;) {
      {
        std::lock_guard guard(lock_);
        if (!node.in_transit) {
          if (!node.listed) return false;
          node.listed = false;
          nodes_.remove(node);
          return true;
        }
      }
      std::this_thread::yield();
    }
  }

  // Owner thread. Calls `schedule(coroutine)` for every listed node, oldest first, and empties the list.
  template <typename Schedule>
  void drain(Schedule&& schedule) noexcept {
    std::lock_guard guard(lock_);
    posted_ = false;
    while (!nodes_.empty()) {
      WakeNode& node = nodes_.pop_front();
      node.listed = false;
      schedule(node.coroutine);
    }
  }

 private:
  SpinLock lock_;
  WakeNodeList nodes_;
  bool posted_ = false;  // the drain work is in the inbox (or running): the next push need not post
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_INTERNAL_WAKE_LIST_H_
