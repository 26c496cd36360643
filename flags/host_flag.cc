#include "flags/host_flag.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace surge::flags {

bool AbslParseFlag(absl::string_view text, HostAddress* host, std::string* error) {
  // SocketAddress parses "host:port"; give it port 0 and an IPv6 literal its brackets.
  const bool bracketed = absl::StartsWith(text, "[") && absl::EndsWith(text, "]");
  const std::string with_port = bracketed || !absl::StrContains(text, ':') ? absl::StrCat(text, ":0")
                                                                            : absl::StrCat("[", text, "]:0");
  auto address = SocketAddress::parse(with_port);
  if (!address) {
    *error = address.error().operation();  // "parse socket address: host is not a numeric IPv4 address ..."
    return false;
  }
  host->address_ = *address;
  return true;
}

std::string HostAddress::to_string() const {
  const std::string text = address_.to_string();  // "127.0.0.1:0" or "[::1]:0"
  const absl::string_view host = absl::string_view(text).substr(0, text.rfind(':'));
  return absl::StartsWith(host, "[") ? std::string(host.substr(1, host.size() - 2)) : std::string(host);
}

}  // namespace surge::flags
