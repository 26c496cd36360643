#include "timer/timer_wheel.h"

#include <algorithm>
#include <bit>

namespace surge {
namespace {

constexpr int digit_shift(int level) { return level * TimerWheel::kSlotBits; }

}  // namespace

TimerWheel::TimerWheel(std::uint64_t start_tick) : now_(start_tick) {}

TimerId TimerWheel::insert(std::uint64_t expiry_tick, Callback callback, void* context) {
  const std::uint32_t index = allocate();
  Entry& entry = entries_[index];
  entry.expiry = expiry_tick;
  entry.callback = callback;
  entry.context = context;
  if (advancing_ && expiry_tick <= now_) {
    entry.level = kInHeld;
    push_back(held_, index);
  } else {
    link(index);
  }
  ++size_;
  return TimerId{index, entry.generation};
}

bool TimerWheel::cancel(TimerId id) noexcept {
  if (id.index >= entries_.size()) return false;
  const Entry& entry = entries_[id.index];
  if (entry.generation != id.generation || entry.level == kInFreeList) return false;
  unlink(id.index);
  release(id.index);
  return true;
}

std::optional<std::uint64_t> TimerWheel::next_event_tick() const noexcept {
  if (size_ == 0) return std::nullopt;  // the common case for an I/O-bound worker: skip the level scan
  if (held_.head != kNone) return now_;
  return next_wheel_event_tick();
}

std::optional<std::uint64_t> TimerWheel::next_wheel_event_tick() const noexcept {
  if (size_ == 0) return std::nullopt;
  if (due_.head != kNone) return now_;
  std::optional<std::uint64_t> earliest;
  for (int level = 0; level < kLevels; ++level) {
    const int current = static_cast<int>((now_ >> digit_shift(level)) & (kSlots - 1));
    // Entries at a level always sit in slots after now_'s digit at that level (see link()).
    const std::uint64_t later = current == kSlots - 1 ? 0 : occupied_[level] & (~std::uint64_t{0} << (current + 1));
    if (later == 0) continue;
    const int slot = std::countr_zero(later);
    const int parent_shift = digit_shift(level + 1);
    const std::uint64_t parent = parent_shift >= 64 ? 0 : (now_ >> parent_shift) << parent_shift;
    const std::uint64_t start = parent | (static_cast<std::uint64_t>(slot) << digit_shift(level));
    if (!earliest || start < *earliest) earliest = start;
  }
  if (overflow_.head != kNone) {
    const std::uint64_t boundary = (now_ / kWheelRange + 1) * kWheelRange;
    if (!earliest || boundary < *earliest) earliest = boundary;
  }
  return earliest;
}

std::size_t TimerWheel::advance(std::uint64_t now_tick) {
  std::size_t fired = 0;
  const std::uint64_t target = std::max(now_tick, now_);
  advancing_ = true;
  fire_due(fired);
  for (;;) {
    const std::optional<std::uint64_t> next = next_wheel_event_tick();
    if (!next || *next > target) break;
    // Nothing is pending before `next`, so jumping there skips no timer.
    now_ = *next;
    if (now_ % kWheelRange == 0 && overflow_.head != kNone) redistribute(overflow_);
    for (int level = kLevels - 1; level >= 0; --level) {
      const std::uint64_t below = (std::uint64_t{1} << digit_shift(level)) - 1;
      if ((now_ & below) != 0) continue;  // now_ is not at the start of a slot of this level
      const int slot = static_cast<int>((now_ >> digit_shift(level)) & (kSlots - 1));
      if ((occupied_[level] >> slot) & 1) redistribute(slots_[level][slot]);
    }
    fire_due(fired);
  }
  now_ = target;
  advancing_ = false;
  // What callbacks inserted for ticks already reached is due at the next advance(). Their order among
  // themselves is kept; they all expire at or before now_, as does everything else on due_.
  while (held_.head != kNone) {
    const std::uint32_t index = held_.head;
    unlink(index);
    entries_[index].level = kInDue;
    push_back(due_, index);
  }
  return fired;
}

void TimerWheel::fire_due(std::size_t& fired) {
  // due_ only shrinks here: a callback's insertion for a tick already reached goes to held_, so this
  // loop ends however often callbacks re-arm.
  while (due_.head != kNone) {
    const std::uint32_t index = due_.head;
    const Callback callback = entries_[index].callback;
    void* const context = entries_[index].context;
    unlink(index);
    release(index);  // before the callback: a cancel() of this id from inside it is a harmless no-op
    ++fired;
    callback(context);
  }
}

TimerWheel::List& TimerWheel::list_of(const Entry& entry) noexcept {
  if (entry.level < kLevels) return slots_[entry.level][entry.slot];
  if (entry.level == kInHeld) return held_;
  return entry.level == kInDue ? due_ : overflow_;
}

void TimerWheel::link(std::uint32_t index) noexcept {
  Entry& entry = entries_[index];
  if (entry.expiry <= now_) {
    entry.level = kInDue;
    push_back(due_, index);
    return;
  }
  // The level is the digit where expiry first differs from now_: every higher digit is shared, so the
  // entry's slot at that level lies strictly after now_'s, and it moves down a level when now_ gets there.
  const int highest_differing_bit = 63 - std::countl_zero(entry.expiry ^ now_);
  const int level = highest_differing_bit / kSlotBits;
  if (level >= kLevels) {
    entry.level = kInOverflow;
    push_back(overflow_, index);
    return;
  }
  entry.level = static_cast<std::uint8_t>(level);
  entry.slot = static_cast<std::uint8_t>((entry.expiry >> digit_shift(level)) & (kSlots - 1));
  push_back(slots_[level][entry.slot], index);
  occupied_[level] |= std::uint64_t{1} << entry.slot;
}

void TimerWheel::push_back(List& list, std::uint32_t index) noexcept {
  Entry& entry = entries_[index];
  entry.previous = list.tail;
  entry.next = kNone;
  if (list.tail != kNone) {
    entries_[list.tail].next = index;
  } else {
    list.head = index;
  }
  list.tail = index;
}

void TimerWheel::unlink(std::uint32_t index) noexcept {
  Entry& entry = entries_[index];
  List& list = list_of(entry);
  if (entry.previous != kNone) {
    entries_[entry.previous].next = entry.next;
  } else {
    list.head = entry.next;
  }
  if (entry.next != kNone) {
    entries_[entry.next].previous = entry.previous;
  } else {
    list.tail = entry.previous;
  }
  if (entry.level < kLevels && list.head == kNone) occupied_[entry.level] &= ~(std::uint64_t{1} << entry.slot);
  entry.previous = entry.next = kNone;
}

std::uint32_t TimerWheel::allocate() {
  if (free_head_ != kNone) {
    const std::uint32_t index = free_head_;
    free_head_ = entries_[index].next;
    return index;
  }
  entries_.emplace_back();
  return static_cast<std::uint32_t>(entries_.size() - 1);
}

void TimerWheel::release(std::uint32_t index) noexcept {
  Entry& entry = entries_[index];
  ++entry.generation;  // every id handed out for this entry so far is now stale
  entry.level = kInFreeList;
  entry.callback = nullptr;
  entry.context = nullptr;
  entry.next = free_head_;
  free_head_ = index;
  --size_;
}

void TimerWheel::redistribute(List& list) {
  // Exactly the entries there now: an overflow entry still out of range goes back to the same list's
  // tail, and must not be visited again.
  std::size_t count = 0;
  for (std::uint32_t index = list.head; index != kNone; index = entries_[index].next) ++count;
  while (count-- > 0) {
    const std::uint32_t index = list.head;
    unlink(index);
    link(index);
  }
}

}  // namespace surge
