#include "examples/http/static_path.h"

#include <array>
#include <utility>

#include "examples/http/request_parser.h"

namespace surge::http {
namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

int resolve_static_path(std::string_view path, std::string& relative) {
  relative.clear();
  if (path.empty() || path.front() != '/') return 400;
  std::string segment;
  bool names_directory = false;  // the last segment was empty or "." ("/", "/a/", "/a/.")
  std::size_t i = 1;
  for (;;) {
    // One segment: up to the next literal '/' (an encoded one is refused).
    segment.clear();
    while (i < path.size() && path[i] != '/') {
      char c = path[i];
      if (c == '%') {
        if (path.size() - i < 3) return 400;
        const int high = hex_value(path[i + 1]);
        const int low = hex_value(path[i + 2]);
        if (high < 0 || low < 0) return 400;
        c = static_cast<char>(high * 16 + low);
        if (c == '/' || c == '\0') return 400;
        i += 3;
      } else {
        // A raw NUL never comes from the request parser (a target is visible ASCII), but a caller that
        // passes other text must not get a path that the C string handed to open() would cut short.
        if (c == '\0') return 400;
        ++i;
      }
      segment.push_back(c);
    }
    if (segment == "..") return 400;
    names_directory = segment.empty() || segment == ".";
    if (!names_directory) {
      if (!relative.empty()) relative.push_back('/');
      relative += segment;
    }
    if (i >= path.size()) break;
    ++i;  // past the '/'
    if (i == path.size()) {
      names_directory = true;
      break;
    }
  }
  if (names_directory || relative.empty()) {
    if (!relative.empty()) relative.push_back('/');
    relative += "index.html";
  }
  return 0;
}

std::string_view content_type_for(std::string_view path) noexcept {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 22> kTypes{{
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"json", "application/json"},
      {"txt", "text/plain; charset=utf-8"},
      {"md", "text/markdown; charset=utf-8"},
      {"csv", "text/csv; charset=utf-8"},
      {"xml", "application/xml"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"ico", "image/x-icon"},
      {"pdf", "application/pdf"},
      {"wasm", "application/wasm"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"gz", "application/gzip"},
  }};
  const std::size_t slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return "application/octet-stream";
  const std::string_view extension = name.substr(dot + 1);
  for (const auto& [known, type] : kTypes) {
    if (equals_ignore_case(extension, known)) return type;
  }
  return "application/octet-stream";
}

}  // namespace surge::http
