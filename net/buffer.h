// buffer.h: MutableBuffer and ConstBuffer, the (pointer, size) views that read and write calls take.
//
// They convert implicitly from any contiguous range of bytes (std::span<std::byte>, std::array<char, N>,
// std::vector<unsigned char>, std::string; ConstBuffer also from std::string_view and string literals,
// without their NUL), so callers pass their own containers. The caller owns the memory and must keep it alive until the operation that
// received the buffer has completed, including after cancellation.
//
//   std::array<std::byte, 4096> storage;
//   auto n = co_await stream.read(storage);                 // MutableBuffer from the array
//   co_await stream.write_all(std::string_view("hello"));   // ConstBuffer from a string_view
#ifndef SURGE_NET_BUFFER_H_
#define SURGE_NET_BUFFER_H_

#include <cstddef>
#include <ranges>
#include <string_view>
#include <type_traits>

namespace surge {

namespace internal {
template <typename Range>
concept ByteRange = std::ranges::contiguous_range<Range> && std::ranges::sized_range<Range> &&
                    sizeof(std::ranges::range_value_t<Range>) == 1;
template <typename Range>
concept MutableByteRange =
    ByteRange<Range> && !std::is_const_v<std::remove_reference_t<std::ranges::range_reference_t<Range>>>;
}  // namespace internal

struct MutableBuffer {
  MutableBuffer(void* bytes, std::size_t count) noexcept : data(bytes), size(count) {}
  template <internal::MutableByteRange Range>
  MutableBuffer(Range&& range) noexcept  // NOLINT: implicit by design
      : data(std::ranges::data(range)), size(std::ranges::size(range)) {}

  void* data;
  std::size_t size;
};

struct ConstBuffer {
  ConstBuffer(const void* bytes, std::size_t count) noexcept : data(bytes), size(count) {}
  ConstBuffer(MutableBuffer buffer) noexcept : data(buffer.data), size(buffer.size) {}  // NOLINT
  ConstBuffer(std::string_view text) noexcept : data(text.data()), size(text.size()) {}  // NOLINT
  // A string literal: its characters without the terminating NUL.
  template <std::size_t N>
  ConstBuffer(const char (&literal)[N]) noexcept : data(literal), size(N - 1) {}  // NOLINT
  // Any other contiguous byte container (std::string, std::vector<std::byte>, std::array, char[N]).
  template <internal::ByteRange Range>
    requires(!std::is_same_v<std::remove_cvref_t<Range>, std::string_view> &&
             !(std::is_array_v<std::remove_reference_t<Range>> &&
               std::is_const_v<std::remove_extent_t<std::remove_reference_t<Range>>>))
  ConstBuffer(Range&& range) noexcept  // NOLINT: implicit by design
      : data(std::ranges::data(range)), size(std::ranges::size(range)) {}

  const void* data;
  std::size_t size;
};

}  // namespace surge

#endif  // SURGE_NET_BUFFER_H_
