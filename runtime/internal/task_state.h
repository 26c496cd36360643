// task_state.h (internal): the state of a Task's coroutine, allocated in one block with its frame, and
// what turns a spawned Task into its own root (no wrapper coroutine, no separate join state).
//
// Every Task<T> frame is allocated by its promise's operator new as one heap block:
//
//   [ TaskState<T>: TaskStateBase, then the result (std::optional<T>) | padding to 16 | coroutine frame ]
//
// The promise itself is empty; everything it used to hold lives in the header in front of the frame, so
// the header outlives the frame. That is what makes a spawn one allocation: Worker::spawn turns the
// header into the spawned task's join state (become_root()), the JoinHandle points at it, and when the
// task returns its frame is destroyed at once (its parameters, e.g. a socket, die then, on its worker)
// while the block stays allocated until the handle has let go of the result too.
//
// What an awaited Task pays for this: the fields only a spawned task uses share a union with the two
// only an awaited one uses (continuation, cancel slot pointer), but the header (sizeof(TaskStateBase) is
// 96, then the result, padded to 16) still makes an awaited Task's block about 80 bytes larger than a
// frame whose promise held only its own state (GCC 12: an empty Task<void> 136 B instead of 56, a
// Task<Result<void>> echo session 688 instead of 608). A spawn saves 224 B of malloc chunks and two
// allocations (join state 80-112 B, root frame 144-168 B).
//
// Ownership of a block:
//   - Awaited (never spawned): the Task object owns the frame; destroying the frame frees the block
//     (TaskPromise::operator delete).
//   - Spawned: references_ counts the frame's owner (the worker, until the task has returned or shutdown
//     destroyed it), the JoinHandle, and a cancel request posted to the task's worker. The worker
//     destroys the frame (operator delete then leaves the block alone) and drops its reference after
//     publishing the outcome; whoever drops the last reference frees the block.
//   - The result (optional<T>) is destroyed by whichever of the handle and the task sees the other gone
//     (the exchange on waiter_ decides): the handle when it is dropped after the task returned, the task
//     when it returns after the handle was dropped (a detached task's result dies on its worker).
//
// Threads: the awaited-task fields and adopted_/cancel_before_start_/the slot are touched on the task's
// worker only; root_.worker, spawned_ and frame_offset_ are set once before the handle exists; waiter_,
// references_, abandoned_ and cancel_posted_ are atomics because the handle may be used on any thread.
#ifndef SURGE_RUNTIME_INTERNAL_TASK_STATE_H_
#define SURGE_RUNTIME_INTERNAL_TASK_STATE_H_

#include <atomic>
#include <cassert>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include "runtime/internal/cancel_slot.h"
#include "runtime/internal/remote_inbox.h"

namespace surge {

class Worker;

namespace internal {

struct JoinWaiter;  // join_handle.h

class TaskStateBase {
 public:
  // Frames are placed at this alignment after the header (what a coroutine frame gets from operator new).
  static constexpr std::size_t kFrameAlignment = __STDCPP_DEFAULT_NEW_ALIGNMENT__;

  // Unlinks a spawned task that has returned from its worker (Worker::roots_) and destroys its frame,
  // then publishes the outcome; returns whether the handle was already dropped. Set by Worker::spawn
  // (release_finished_root in worker.cc): a Task does not link against the worker.
  using FinishRoot = bool (*)(TaskStateBase& state) noexcept;

  TaskStateBase(const TaskStateBase&) = delete;
  TaskStateBase& operator=(const TaskStateBase&) = delete;

  // --- Every task, on the worker that runs it. ---
  bool spawned() const noexcept { return spawned_; }
  std::coroutine_handle<> continuation() const noexcept { return awaited_.continuation; }
  void set_continuation(std::coroutine_handle<> continuation) noexcept { awaited_.continuation = continuation; }
  // An awaited task shares its awaiter's slot; a spawned task has its own.
  CancelSlot* cancel_slot() noexcept { return spawned_ ? &root_.slot : awaited_.cancel_slot; }
  void set_cancel_slot(CancelSlot* slot) noexcept {
    assert(!spawned_);
    awaited_.cancel_slot = slot;
  }
  void set_exception(std::exception_ptr exception) noexcept { exception_ = std::move(exception); }
  void rethrow_if_failed() {
    if (exception_) std::rethrow_exception(exception_);
  }
  void* frame_address() noexcept { return reinterpret_cast<char*>(this) + frame_offset_; }

  // --- Spawn: the spawning thread, before the handle exists. ---
  // Makes this (unstarted) task a root run by `worker`: two references, the frame's and the handle's.
  void become_root(Worker& worker, FinishRoot finish) noexcept {
    assert(!spawned_ && "a Task can be spawned once");
    std::construct_at(&root_);
    root_.worker = &worker;
    root_.finish = finish;
    spawned_ = true;
    references_.store(2, std::memory_order_relaxed);
  }
  // The node that hands the task to its worker when spawned from another thread. It shares storage with
  // the task's CancelSlot, which adopt() sets up once the node has been taken off the inbox.
  RemoteWork& adoption() noexcept { return *std::construct_at(&root_.adoption); }
  static TaskStateBase& from_adoption(RemoteWork& work) noexcept {
    return *reinterpret_cast<TaskStateBase*>(reinterpret_cast<char*>(&work) - offsetof(TaskStateBase, root_.adoption));
  }

  // --- A spawned task, on its worker. ---
  Worker* worker() const noexcept { return root_.worker; }
  // The worker takes the task; returns whether cancellation was requested before that.
  bool adopt() noexcept {
    std::construct_at(&root_.slot);
    adopted_ = true;
    return cancel_before_start_;
  }
  // The task has returned: see FinishRoot.
  bool finish_root() noexcept { return root_.finish(*this); }
  // The worker destroys the unfinished task on shutdown; a registered waiter is woken (its await then
  // throws broken_promise). Defined in worker.h.
  void abandon() noexcept;
  // Publishes that the task has returned and wakes the waiter on its worker; returns whether the handle
  // was dropped before (then the caller destroys the result). Defined in worker.h.
  bool mark_finished() noexcept;

  // --- Any thread (the handle's side). ---
  // acquire: a consumer that sees the task finished also sees its result.
  bool finished() const noexcept { return root_.waiter.load(std::memory_order_acquire) == kFinished; }
  bool abandoned() const noexcept { return abandoned_.load(std::memory_order_acquire); }
  // Requests cancellation of the task on its own worker (directly, or through its inbox). Defined in worker.h.
  void request_cancel() noexcept;
  // Registers `waiter`; returns false if the task finished meanwhile (then nothing was registered and
  // the caller must not suspend). Defined in worker.h.
  bool set_waiter(JoinWaiter& waiter) noexcept;
  // The waiter's frame is destroyed while `waiter` is registered (its worker shuts down): unregisters it,
  // or, if the task has already claimed it for a wake-up, makes that wake-up resume nothing. The waiter's
  // worker thread only. Defined in worker.h.
  void forget_waiter(JoinWaiter& waiter) noexcept;
  // The handle lets go; returns whether the task had finished (then the caller destroys the result,
  // which the task no longer touches). After this the task discards its result itself.
  bool detach_handle() noexcept {
    if (root_.waiter.load(std::memory_order_acquire) == kFinished) return true;
    return root_.waiter.exchange(kDetached, std::memory_order_acq_rel) == kFinished;
  }

  void add_ref() noexcept { references_.fetch_add(1, std::memory_order_relaxed); }
  // The last reference frees the block (the frame is gone by then, and the result destroyed). Seeing 1
  // means the caller holds the only reference, and nobody else can add one (add_ref is only called by
  // a holder), so the locked decrement is skipped; acquire pairs with the other holders' releases.
  void release() noexcept {
    if (references_.load(std::memory_order_acquire) == 1 ||
        references_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      this->~TaskStateBase();
      ::operator delete(static_cast<void*>(this));
    }
  }

 protected:
  explicit TaskStateBase(std::size_t frame_offset) noexcept
      : awaited_(), frame_offset_(static_cast<std::uint16_t>(frame_offset)) {}
  ~TaskStateBase() = default;

 private:
  friend class surge::Worker;  // links roots_ through previous_/next_

  static void on_waiter_cancelled(void* self) noexcept { static_cast<TaskStateBase*>(self)->request_cancel(); }
  // Resumes the registered waiter, which the caller has just unregistered (finish or abandon): on this
  // thread if it is the waiter's worker's, else through that worker's inbox with root_.wake. Reads only
  // this header, never the waiter's frame. Defined in worker.h.
  void wake_waiter() noexcept;
  static void run_wake(RemoteWork& work, Worker& worker) noexcept;  // defined in worker.h
  static TaskStateBase& from_wake(RemoteWork& work) noexcept {
    return *reinterpret_cast<TaskStateBase*>(reinterpret_cast<char*>(&work) - offsetof(TaskStateBase, root_.wake));
  }
  static bool is_waiter(std::uintptr_t word) noexcept { return word != 0 && word != kFinished && word != kDetached; }
  // On the task's worker: a cancel request from any source.
  void cancel_here() noexcept;                                             // defined in worker.h
  static void run_remote_cancel(RemoteWork& work, Worker& worker) noexcept;  // defined in worker.h
  static TaskStateBase& from_remote_cancel(RemoteWork& work) noexcept {
    return *reinterpret_cast<TaskStateBase*>(reinterpret_cast<char*>(&work) -
                                             offsetof(TaskStateBase, root_.remote_cancel));
  }

  // waiter_: no waiter yet (0), finished (kFinished), handle dropped (kDetached), or the address of the
  // registered JoinWaiter. The task finishing (exchange to kFinished) and a waiter registering (CAS from
  // 0) or the handle going (exchange to kDetached) are decided by whichever comes first on this one
  // atomic: no wake-up is lost or duplicated, and the result is destroyed exactly once.
  static constexpr std::uintptr_t kFinished = 1;
  static constexpr std::uintptr_t kDetached = 2;

 protected:
  // A header whose task was never run (a Runtime refusing a spawn): a root that is already abandoned.
  void become_abandoned_root() noexcept {
    std::construct_at(&root_);
    spawned_ = true;
    references_.store(1, std::memory_order_relaxed);  // the handle's only
    abandoned_.store(true, std::memory_order_relaxed);
  }

  // All data members have one access level, so the class is standard-layout (offsetof above).
  struct Awaited {
    std::coroutine_handle<> continuation = std::noop_coroutine();  // resumed when the body has returned
    CancelSlot* cancel_slot = nullptr;                              // the awaiter's chain (nullptr if none)
  };
  struct Root {
    Root() noexcept : slot() {}
    union {
      CancelSlot slot;      // from adoption on: shared by everything the task awaits
      RemoteWork adoption;  // until then, if spawned from another thread
      RemoteWork wake;      // once the frame is gone: the waiter's wake-up, posted to its worker
    };
    Worker* worker = nullptr;  // the task's worker
    FinishRoot finish = nullptr;
    RemoteWork remote_cancel;  // a cancel request posted to `worker` (holds a reference)
    std::atomic<std::uintptr_t> waiter{0};
    // Copied from the JoinWaiter by set_waiter(), before it is published in `waiter`.
    std::coroutine_handle<> waiter_coroutine = nullptr;
    Worker* waiter_worker = nullptr;
  };

  // The worker's intrusive list of unfinished spawned tasks (Worker::roots_).
  TaskStateBase* previous_ = nullptr;
  TaskStateBase* next_ = nullptr;
  union {
    Awaited awaited_;  // until become_root()
    Root root_;        // from then on
  };
  std::exception_ptr exception_;
  std::atomic<std::uint8_t> references_{1};  // an awaited task's block: only its frame
  std::atomic<bool> abandoned_{false};
  std::atomic<bool> cancel_posted_{false};
  bool spawned_ = false;
  bool adopted_ = false;               // task's worker only
  bool cancel_before_start_ = false;   // likewise
  bool waiter_gone_ = false;           // the waiter's worker only: its frame was destroyed (forget_waiter)
  const std::uint16_t frame_offset_;   // from this header to the frame
};
static_assert(std::is_standard_layout_v<TaskStateBase>);

// What TaskState<T> and TaskState<void> share: the block of header and frame, from either end.
// `State` is the header type (a TaskState), whose kFrameOffset says where the frame starts.
template <typename State>
class TaskBlock {
 public:
  static State& of_frame(void* frame) noexcept {
    return *std::launder(reinterpret_cast<State*>(static_cast<char*>(frame) - State::kFrameOffset));
  }
  static State& of(TaskStateBase& base) noexcept { return static_cast<State&>(base); }

  // The promise's operator new: the header, then room for the frame.
  static void* allocate_with_frame(std::size_t frame_size) {
    static_assert(sizeof(State) <= State::kFrameOffset);
    void* block = ::operator new(State::kFrameOffset + frame_size);
    ::new (block) State();
    return static_cast<char*>(block) + State::kFrameOffset;
  }
  // The promise's operator delete. A spawned task's block outlives its frame (see the top of the file).
  static void frame_deleted(void* frame) noexcept {
    State& state = of_frame(frame);
    if (state.spawned()) return;
    state.~State();
    ::operator delete(static_cast<void*>(&state));
  }
  // A header without a frame whose task was never run (a Runtime refusing a spawn): only the handle's.
  static State& make_abandoned() {
    auto* state = ::new (::operator new(sizeof(State))) State();
    state->become_abandoned_root();
    return *state;
  }
};

// The header of a Task<T>'s block: the base, then the result.
template <typename T>
class TaskState final : public TaskStateBase, public TaskBlock<TaskState<T>> {
 public:
  // Where the frame starts, from the start of the block.
  static constexpr std::size_t kValueOffset =
      (sizeof(TaskStateBase) + alignof(std::optional<T>) - 1) / alignof(std::optional<T>) * alignof(std::optional<T>);
  static constexpr std::size_t kFrameOffset =
      (kValueOffset + sizeof(std::optional<T>) + kFrameAlignment - 1) / kFrameAlignment * kFrameAlignment;
  static_assert(kFrameOffset <= UINT16_MAX, "a Task's result must be smaller than 64 KiB; return it by pointer");
  static_assert(alignof(T) <= kFrameAlignment, "over-aligned Task results are not supported");


  template <typename U>
  void set_value(U&& value) {
    value_.emplace(std::forward<U>(value));
  }
  T take() {
    rethrow_if_failed();
    assert(value_.has_value() && "Task finished without a value");
    return std::move(*value_);
  }
  void discard_value() noexcept { value_.reset(); }

 private:
  friend class TaskBlock<TaskState>;
  TaskState() noexcept : TaskStateBase(kFrameOffset) {}
  ~TaskState() = default;

  std::optional<T> value_;
};

template <>
class TaskState<void> final : public TaskStateBase, public TaskBlock<TaskState<void>> {
 public:
  static constexpr std::size_t kFrameOffset =
      (sizeof(TaskStateBase) + kFrameAlignment - 1) / kFrameAlignment * kFrameAlignment;


  void take() { rethrow_if_failed(); }
  void discard_value() noexcept {}

 private:
  friend class TaskBlock<TaskState>;
  TaskState() noexcept : TaskStateBase(kFrameOffset) {}
  ~TaskState() = default;
};

}  // namespace internal
}  // namespace surge

#endif  // SURGE_RUNTIME_INTERNAL_TASK_STATE_H_
