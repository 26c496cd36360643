// fd_count.h: counts this process's open file descriptors, to prove that nothing leaks.
//
//   const int before = surge::testing::open_fd_count();
//   ...                                   // open and close sockets
//   EXPECT_EQ(surge::testing::open_fd_count(), before);
#ifndef SURGE_RUNTIME_TESTING_FD_COUNT_H_
#define SURGE_RUNTIME_TESTING_FD_COUNT_H_

#include <dirent.h>

namespace surge::testing {

// Entries in /proc/self/fd (the directory's own fd is counted every time, so differences are exact).
inline int open_fd_count() {
  DIR* directory = opendir("/proc/self/fd");
  if (directory == nullptr) return -1;
  int count = 0;
  while (readdir(directory) != nullptr) ++count;
  closedir(directory);
  return count;
}

}  // namespace surge::testing

#endif  // SURGE_RUNTIME_TESTING_FD_COUNT_H_
