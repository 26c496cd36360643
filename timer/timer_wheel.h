// timer_wheel.h: a hierarchical timer wheel with O(1) insert and cancel and millisecond resolution.
//
// Six levels of 64 slots cover 2^36 ms (about 2.2 years) ahead of the current tick; timers further out
// wait in an overflow list that is re-examined every 2^36 ms, so any range works. Advancing jumps straight
// to the next non-empty slot (found through one occupancy bitmap per level), so an idle wheel costs nothing
// per elapsed tick. The wheel knows no clock: the owner passes the current tick (milliseconds from any
// origin) to advance(), which makes it testable with a manual clock and independent of the I/O backends.
//
//   TimerWheel wheel;
//   TimerId id = wheel.insert(/*expiry_tick=*/250, &on_expiry, context);   // fires once tick >= 250
//   wheel.cancel(id);                     // harmless after it fired: ids carry a generation
//   wheel.advance(now_ms);                // fires everything due, in expiry order
//   std::optional<uint64_t> t = wheel.next_event_tick();   // when to call advance() next, at the latest
//
// Callbacks run inside advance() and may insert and cancel timers. Timers are never early: a timer fires
// during the first advance(t) with t >= its expiry tick. Timers fire in expiry order (ties in no
// particular order). A timer inserted for a tick already reached fires at the next advance(), also when
// a callback inserts it: so a timer that re-arms itself for "now" fires once per advance(), and
// advance() always returns. Such a timer counts as due: next_event_tick() reports the current tick.
// Not thread-safe: one wheel belongs to one worker.
#ifndef SURGE_TIMER_TIMER_WHEEL_H_
#define SURGE_TIMER_TIMER_WHEEL_H_

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace surge {

// Identifies one insertion; stale ids (fired or cancelled) are recognised by their generation.
struct TimerId {
  std::uint32_t index = UINT32_MAX;
  std::uint32_t generation = 0;
  bool valid() const noexcept { return index != UINT32_MAX; }
};

class TimerWheel {
 public:
  using Callback = void (*)(void* context) noexcept;

  static constexpr int kLevels = 6;
  static constexpr int kSlotBits = 6;
  static constexpr int kSlots = 1 << kSlotBits;
  static constexpr std::uint64_t kWheelRange = std::uint64_t{1} << (kLevels * kSlotBits);  // ticks

  // `start_tick` is the wheel's current tick: timers at or before it fire at the next advance().
  explicit TimerWheel(std::uint64_t start_tick = 0);

  // Schedules `callback(context)` for the first advance() to a tick >= `expiry_tick`.
  TimerId insert(std::uint64_t expiry_tick, Callback callback, void* context);

  // Removes a pending timer; returns false (and does nothing) if it already fired or was cancelled.
  bool cancel(TimerId id) noexcept;

  // Moves the current tick forward to `now_tick` (never backward) and fires every timer due by then.
  // Returns how many fired.
  std::size_t advance(std::uint64_t now_tick);

  // The earliest tick at which advance() has work to do (a timer to fire, or one to move to a finer
  // level): no timer expires before it. nullopt when no timer is pending.
  std::optional<std::uint64_t> next_event_tick() const noexcept;

  std::uint64_t current_tick() const noexcept { return now_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

 private:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  // Where an entry is linked. Levels 0..kLevels-1 are wheel levels; the rest are lists.
  static constexpr std::uint8_t kInDue = kLevels;
  static constexpr std::uint8_t kInOverflow = kLevels + 1;
  static constexpr std::uint8_t kInFreeList = kLevels + 2;
  static constexpr std::uint8_t kInHeld = kLevels + 3;

  struct Entry {
    std::uint64_t expiry = 0;
    Callback callback = nullptr;
    void* context = nullptr;
    std::uint32_t previous = kNone;
    std::uint32_t next = kNone;
    std::uint32_t generation = 0;
    std::uint8_t level = kInFreeList;
    std::uint8_t slot = 0;
  };
  struct List {
    std::uint32_t head = kNone;
    std::uint32_t tail = kNone;
  };

  List& list_of(const Entry& entry) noexcept;
  void link(std::uint32_t index) noexcept;  // places entries_[index] by its expiry relative to now_
  void unlink(std::uint32_t index) noexcept;
  void push_back(List& list, std::uint32_t index) noexcept;
  std::uint32_t allocate();
  void release(std::uint32_t index) noexcept;
  // Re-places every entry of `list` relative to now_ (they move to finer levels, or to the due list).
  void redistribute(List& list);
  void fire_due(std::size_t& fired);
  // The earliest tick with work for advance(), not counting held_ (advance() does not fire those).
  std::optional<std::uint64_t> next_wheel_event_tick() const noexcept;

  std::uint64_t now_;
  std::vector<Entry> entries_;
  std::uint32_t free_head_ = kNone;
  std::array<std::array<List, kSlots>, kLevels> slots_{};
  std::array<std::uint64_t, kLevels> occupied_{};  // bit s set: slots_[level][s] is not empty
  List due_;       // expiry <= now_: fire at the next advance()
  // Inserted by a callback for a tick already reached: joins due_ when advance() returns, so that it
  // fires at the next advance(), not in a loop inside this one.
  List held_;
  List overflow_;  // beyond the wheel's range
  std::size_t size_ = 0;
  bool advancing_ = false;  // advance() is running (so callbacks may be inserting)
};

}  // namespace surge

#endif  // SURGE_TIMER_TIMER_WHEEL_H_
