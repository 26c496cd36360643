// The static-path resolver's rules (static_path.h): what a path resolves to, every way out of the root that
// it refuses, an exhaustive check of its invariants over short paths, and Content-Type by extension.
#include "examples/http/static_path.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace surge::http {
namespace {

using namespace std::string_view_literals;

std::string resolved(std::string_view path) {
  std::string relative = "stale";
  const int status = resolve_static_path(path, relative);
  if (status != 0) return "status " + std::to_string(status);
  return relative;
}

TEST(ResolveStaticPath, ResolvesPaths) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"/", "index.html"},
      {"/a/", "a/index.html"},
      {"/a", "a"},
      {"/a/b.html", "a/b.html"},
      {"//a", "a"},
      {"/a//b", "a/b"},
      {"/a/./b", "a/b"},
      {"/./a", "a"},
      {"/a/.", "a/index.html"},
      {"/.", "index.html"},
      {"//", "index.html"},
      {"/a/b/", "a/b/index.html"},
      {"/a/b//", "a/b/index.html"},
      {"/%61", "a"},                            // an escape decoded
      {"/hello%20world.txt", "hello world.txt"},
      {"/a%2eb", "a.b"},
      {"/%2e/a", "a"},                          // an encoded "." is a "." segment
      {"/.hidden", ".hidden"},
      {"/...", "..."},                          // three dots is a name, not a way up
      {"/..a/b..", "..a/b.."},
      {"/a/..b", "a/..b"},
      {"/a\\..\\b", "a\\..\\b"},                // a backslash is an ordinary character on Linux
      {"/%C3%A9t%C3%A9", "\xC3\xA9t\xC3\xA9"},
  };
  for (const auto& [path, expected] : cases) {
    EXPECT_EQ(resolved(path), expected) << path;
  }
}

TEST(ResolveStaticPath, RefusesEveryWayOut) {
  for (std::string_view path : {
           "/.."sv, "/../"sv, "/../x"sv, "/a/../b"sv, "/a/.."sv, "/a/b/../../../etc/passwd"sv,
           "/%2e%2e/x"sv, "/%2E%2e/x"sv, "/.%2e/x"sv, "/%2e./x"sv, "/a/%2e%2e"sv,
           "/%2E%2e%2Fx"sv, "/..%2fx"sv, "/..%2Fx"sv, "/a%2fb"sv, "/%2F"sv,   // encoded slashes
           "/a%00b"sv, "/%00"sv,                                               // NUL
           "/%zz"sv, "/%4"sv, "/%"sv, "/a%g0"sv, "/a%0g"sv, "/%%32%65"sv,      // malformed escapes
       }) {
    EXPECT_EQ(resolved(path), "status 400") << path;
  }
  // Decoding happens once: a double-encoded ".." is the literal name "%2e%2e", which stays under the root.
  EXPECT_EQ(resolved("/%252e%252e/x"), "%2e%2e/x");
  // A raw NUL too (the parser never passes one, but the resolver does not rely on that).
  EXPECT_EQ(resolved(std::string_view("/a\0b", 4)), "status 400");
  EXPECT_EQ(resolved(std::string_view("/\0", 2)), "status 400");
  // What is not origin-form is refused.
  EXPECT_EQ(resolved(""), "status 400");
  EXPECT_EQ(resolved("*"), "status 400");
  EXPECT_EQ(resolved("a/b"), "status 400");
  EXPECT_EQ(resolved("../x"), "status 400");
}

// Every path of up to 7 characters over an alphabet that builds dots, slashes, escapes and names: whatever
// it resolves to is relative, has no "..", "." or empty segment, no NUL, and does not end in '/'.
TEST(ResolveStaticPath, InvariantsHoldForEveryShortPath) {
  constexpr std::string_view kAlphabet = "/.%2eEfF0a";
  std::string path;
  std::string relative;
  std::size_t resolved_count = 0;
  std::size_t refused_count = 0;
  auto check = [&](const std::string& p) {
    const int status = resolve_static_path(p, relative);
    if (status != 0) {
      ASSERT_EQ(status, 400) << p;
      ++refused_count;
      return;
    }
    ++resolved_count;
    ASSERT_FALSE(relative.empty()) << p;
    ASSERT_NE(relative.front(), '/') << p << " -> " << relative;
    ASSERT_NE(relative.back(), '/') << p << " -> " << relative;
    ASSERT_EQ(relative.find('\0'), std::string::npos) << p;
    std::size_t begin = 0;
    while (true) {
      const std::size_t slash = relative.find('/', begin);
      const std::string_view segment =
          std::string_view(relative).substr(begin, slash == std::string::npos ? std::string::npos : slash - begin);
      ASSERT_FALSE(segment.empty()) << p << " -> " << relative;
      ASSERT_NE(segment, "..") << p << " -> " << relative;
      ASSERT_NE(segment, ".") << p << " -> " << relative;
      if (slash == std::string::npos) break;
      begin = slash + 1;
    }
  };
  // Odometer over the characters after the leading '/'.
  for (std::size_t length = 0; length <= 6; ++length) {
    std::string digits(length, 0);
    while (true) {
      path = "/";
      for (char d : digits) path.push_back(kAlphabet[static_cast<std::size_t>(d)]);
      check(path);
      if (HasFatalFailure()) return;
      std::size_t i = 0;
      while (i < length && ++digits[i] == static_cast<char>(kAlphabet.size())) digits[i++] = 0;
      if (i == length) break;
    }
  }
  EXPECT_GT(resolved_count, 100000u);
  EXPECT_GT(refused_count, 100000u);
}

TEST(ContentTypeFor, KnownExtensions) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"index.html", "text/html; charset=utf-8"},
      {"a/b/page.htm", "text/html; charset=utf-8"},
      {"INDEX.HTML", "text/html; charset=utf-8"},
      {"style.css", "text/css; charset=utf-8"},
      {"app.js", "text/javascript; charset=utf-8"},
      {"mod.mjs", "text/javascript; charset=utf-8"},
      {"data.json", "application/json"},
      {"notes.txt", "text/plain; charset=utf-8"},
      {"README.md", "text/markdown; charset=utf-8"},
      {"t.csv", "text/csv; charset=utf-8"},
      {"feed.xml", "application/xml"},
      {"logo.svg", "image/svg+xml"},
      {"a.png", "image/png"},
      {"a.jpg", "image/jpeg"},
      {"a.JPEG", "image/jpeg"},
      {"a.gif", "image/gif"},
      {"a.webp", "image/webp"},
      {"favicon.ico", "image/x-icon"},
      {"doc.pdf", "application/pdf"},
      {"m.wasm", "application/wasm"},
      {"f.woff", "font/woff"},
      {"f.woff2", "font/woff2"},
      {"archive.tar.gz", "application/gzip"},  // the last extension counts
  };
  for (const auto& [path, type] : cases) EXPECT_EQ(content_type_for(path), type) << path;
}

TEST(ContentTypeFor, UnknownIsOctetStream) {
  for (std::string_view path : {"README"sv, ".bashrc"sv, "a/.hidden"sv, "x."sv, "a.unknown"sv, "a.tar"sv,
                                "dir.html/file"sv, "a.htmlx"sv, "a.xhtml"sv, ""sv, "/"sv}) {
    EXPECT_EQ(content_type_for(path), "application/octet-stream") << path;
  }
}

}  // namespace
}  // namespace surge::http
