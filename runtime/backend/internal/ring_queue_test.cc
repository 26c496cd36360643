// RingQueue: FIFO order across wrap-around and growth, erase keeping order, no reallocation in a cycle.
#include "runtime/backend/internal/ring_queue.h"

#include <gtest/gtest.h>

#include <deque>
#include <random>

namespace surge::internal {
namespace {

TEST(RingQueueTest, MatchesADequeUnderRandomUse) {
  RingQueue<int> queue;
  std::deque<int> model;
  std::mt19937 random(5);
  for (int step = 0; step < 20000; ++step) {
    const unsigned action = random() % 10;
    if (action < 5 || model.empty()) {
      queue.push_back(step);
      model.push_back(step);
    } else if (action < 9) {
      ASSERT_EQ(queue.front(), model.front());
      queue.pop_front();
      model.pop_front();
    } else {
      const int victim = model[random() % model.size()];
      queue.erase(victim);
      std::erase(model, victim);
    }
    ASSERT_EQ(queue.size(), model.size());
  }
  std::vector<int> rest;
  queue.for_each([&](int value) { rest.push_back(value); });
  EXPECT_EQ(rest, std::vector<int>(model.begin(), model.end()));
}

TEST(RingQueueTest, CyclingAtAConstantSizeKeepsItsStorage) {
  RingQueue<int> queue;
  for (int i = 0; i < 10; ++i) queue.push_back(i);
  const int* storage = &queue.front();  // the slots' array, since head is at 0
  for (int i = 0; i < 1000; ++i) {
    queue.pop_front();
    queue.push_back(i);
  }
  EXPECT_EQ(queue.size(), 10u);
  // Popping everything brings head back around to the same array.
  bool same_array = false;
  for (int i = 0; i < 16 && !queue.empty(); ++i) {
    if (&queue.front() == storage) same_array = true;
    queue.pop_front();
    queue.push_back(i);
  }
  EXPECT_TRUE(same_array) << "the queue reallocated while its size stayed at 10";
}

}  // namespace
}  // namespace surge::internal
