#include "net/unix_address.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace surge {
namespace {

constexpr socklen_t kNameOffset = offsetof(sockaddr_un, sun_path);

}  // namespace

UnixAddress::UnixAddress() noexcept : storage_{}, size_(kNameOffset) { storage_.sun_family = AF_UNIX; }

UnixAddress UnixAddress::unnamed() noexcept { return UnixAddress(); }

Result<UnixAddress> UnixAddress::path(std::string_view path) {
  if (path.empty()) return Error(EINVAL, "unix address: empty path (use @name for an abstract name)");
  if (path.find('\0') != std::string_view::npos) return Error(EINVAL, "unix address: NUL byte in a path");
  if (path.size() > kMaxPathLength) {
    return Error(ENAMETOOLONG, "unix address: path longer than 107 bytes (sockaddr_un's limit)");
  }
  UnixAddress address;
  std::memcpy(address.storage_.sun_path, path.data(), path.size());
  address.storage_.sun_path[path.size()] = '\0';
  // The length counts the terminating NUL, as getsockname reports it back.
  address.size_ = static_cast<socklen_t>(kNameOffset + path.size() + 1);
  return address;
}

Result<UnixAddress> UnixAddress::abstract(std::string_view name) {
  if (name.size() > kMaxAbstractLength) {
    return Error(ENAMETOOLONG, "unix address: abstract name longer than 107 bytes (sockaddr_un's limit)");
  }
  UnixAddress address;
  address.storage_.sun_path[0] = '\0';
  if (!name.empty()) std::memcpy(address.storage_.sun_path + 1, name.data(), name.size());
  address.size_ = static_cast<socklen_t>(kNameOffset + 1 + name.size());
  return address;
}

Result<UnixAddress> UnixAddress::parse(std::string_view text) {
  if (!text.empty() && text.front() == '@') return abstract(text.substr(1));
  return path(text);
}

Result<UnixAddress> UnixAddress::from_sockaddr(const sockaddr* address, socklen_t size) {
  if (address == nullptr || size < sizeof(sa_family_t) || address->sa_family != AF_UNIX) {
    return Error(EAFNOSUPPORT, "unix address: not an AF_UNIX address");
  }
  if (size > sizeof(sockaddr_un)) size = sizeof(sockaddr_un);
  UnixAddress result;
  std::memcpy(&result.storage_, address, size);
  result.size_ = size;
  if (result.kind() == Kind::kPath) {
    // The kernel may report a path with or without its NUL (and with a 108-byte path, none fits):
    // normalise to "path NUL" so that equal paths compare equal and path_c_str() is terminated.
    const std::size_t room = size - kNameOffset;
    const std::size_t length = strnlen(result.storage_.sun_path, room);
    if (length > kMaxPathLength) return Error(ENAMETOOLONG, "unix address: path longer than 107 bytes");
    result.storage_.sun_path[length] = '\0';
    result.size_ = static_cast<socklen_t>(kNameOffset + length + 1);
  }
  return result;
}

namespace {

template <int (*kQuery)(int, sockaddr*, socklen_t*)>
Result<UnixAddress> query(int fd, const char* operation) {
  sockaddr_un storage{};
  socklen_t size = sizeof(storage);
  if (kQuery(fd, reinterpret_cast<sockaddr*>(&storage), &size) < 0) return Error(errno, operation);
  return UnixAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&storage), size);
}

}  // namespace

Result<UnixAddress> UnixAddress::local_of(int fd) { return query<::getsockname>(fd, "getsockname"); }
Result<UnixAddress> UnixAddress::peer_of(int fd) { return query<::getpeername>(fd, "getpeername"); }

UnixAddress::Kind UnixAddress::kind() const noexcept {
  if (size_ <= kNameOffset) return Kind::kUnnamed;
  return storage_.sun_path[0] == '\0' ? Kind::kAbstract : Kind::kPath;
}

std::string_view UnixAddress::name() const noexcept {
  switch (kind()) {
    case Kind::kPath:
      return std::string_view(storage_.sun_path);
    case Kind::kAbstract:
      return std::string_view(storage_.sun_path + 1, size_ - kNameOffset - 1);
    case Kind::kUnnamed:
      break;
  }
  return {};
}

std::string UnixAddress::to_string() const {
  switch (kind()) {
    case Kind::kPath:
      return std::string(name());
    case Kind::kAbstract: {
      std::string text = "@";
      for (const char c : name()) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte >= 0x20 && byte < 0x7f && byte != '\\') {
          text += c;
        } else {
          static constexpr char kHex[] = "0123456789abcdef";
          text += "\\x";
          text += kHex[byte >> 4];
          text += kHex[byte & 0xf];
        }
      }
      return text;
    }
    case Kind::kUnnamed:
      break;
  }
  return "(unnamed)";
}

bool operator==(const UnixAddress& a, const UnixAddress& b) noexcept {
  return a.size_ == b.size_ &&
         std::memcmp(a.storage_.sun_path, b.storage_.sun_path, a.size_ - offsetof(sockaddr_un, sun_path)) == 0;
}

}  // namespace surge
