#include "runtime/error.h"

#include <cstring>

namespace surge {

std::string Error::message() const {
  std::string text = operation_ != nullptr ? operation_ : "operation";
  text += ": ";
  char buffer[128];
  // GNU strerror_r returns a pointer that may or may not be `buffer`.
  text += strerror_r(code_, buffer, sizeof(buffer));
  return text;
}

}  // namespace surge
