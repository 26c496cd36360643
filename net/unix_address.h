// unix_address.h: UnixAddress, the address of a Unix-domain socket: a filesystem path, a Linux abstract
// name, or unnamed.
//
//   auto at_path = surge::UnixAddress::path("/run/app.sock");       // a socket file in the filesystem
//   auto abstract = surge::UnixAddress::abstract("app");            // no file; printed as "@app"
//   auto either = surge::UnixAddress::parse("@app");                 // "@name" is abstract, else a path
//   if (!at_path) std::cerr << at_path.error().message();           // e.g. "unix address: path longer ..."
//
// Why a type of its own rather than more of SocketAddress: SocketAddress is an IP address with a port
// (port(), with_port(), "host:port" parsing), and none of that means anything here; a path needs its
// own length rules and its own printable form.
//
// Limits (sockaddr_un has 108 bytes for the name): a path has 1 to 107 bytes and no NUL byte (the
// 108th holds the terminating NUL, so the kernel and unlink(2) see the same name); an abstract name has
// 0 to 107 bytes, any bytes at all (the kernel counts them by length; the leading NUL that marks the
// name as abstract is added here, not part of `name`). Longer gives ENAMETOOLONG, a NUL inside a path
// EINVAL, each with an operation text that says which rule was broken.
#ifndef SURGE_NET_UNIX_ADDRESS_H_
#define SURGE_NET_UNIX_ADDRESS_H_

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "runtime/result.h"

namespace surge {

class UnixAddress {
 public:
  enum class Kind { kUnnamed, kPath, kAbstract };

  // The longest path (without its NUL) and the longest abstract name (without the leading NUL).
  static constexpr std::size_t kMaxPathLength = sizeof(sockaddr_un::sun_path) - 1;  // 107
  static constexpr std::size_t kMaxAbstractLength = sizeof(sockaddr_un::sun_path) - 1;

  // A filesystem path, relative paths taken from the current directory when used.
  static Result<UnixAddress> path(std::string_view path);
  // A Linux abstract name: no file, gone when the last socket bound to it closes.
  static Result<UnixAddress> abstract(std::string_view name);
  // "@name" is abstract (name may be empty), anything else a path.
  static Result<UnixAddress> parse(std::string_view text);
  // No name: what an unbound socket (or one end of a socketpair) has. Binding to it asks Linux to
  // autobind the socket to a fresh abstract name (five hex digits).
  static UnixAddress unnamed() noexcept;

  // Copies a kernel-provided address (getsockname, recvmsg); EAFNOSUPPORT unless it is AF_UNIX.
  static Result<UnixAddress> from_sockaddr(const sockaddr* address, socklen_t size);
  // The local (getsockname) or remote (getpeername) address of a Unix socket.
  static Result<UnixAddress> local_of(int fd);
  static Result<UnixAddress> peer_of(int fd);

  Kind kind() const noexcept;
  bool is_path() const noexcept { return kind() == Kind::kPath; }
  bool is_abstract() const noexcept { return kind() == Kind::kAbstract; }
  bool is_unnamed() const noexcept { return kind() == Kind::kUnnamed; }

  // The path (kPath) or the abstract name without its leading NUL (kAbstract); empty when unnamed.
  std::string_view name() const noexcept;
  // The path as a C string (kPath only; "" otherwise).
  const char* path_c_str() const noexcept { return is_path() ? storage_.sun_path : ""; }

  // The path as it is; "@name" for an abstract name, with bytes that are not printable ASCII (and '\')
  // written as \xNN; "(unnamed)". parse(to_string()) gives the same address back for paths and for
  // printable abstract names.
  std::string to_string() const;

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return size_; }

  friend bool operator==(const UnixAddress& a, const UnixAddress& b) noexcept;

 private:
  UnixAddress() noexcept;

  sockaddr_un storage_;
  socklen_t size_;
};

}  // namespace surge

#endif  // SURGE_NET_UNIX_ADDRESS_H_
