// static_path.h: from a request's path to a file under the served directory, refusing every way out of it;
// and the Content-Type of a file by its extension. No I/O; fuzzed with the request parser.
//
//   std::string relative;
//   if (int status = surge::http::resolve_static_path(head.path, relative); status != 0) respond(status);
//   open(root + "/" + relative) ...       // "a/b.html": never absolute, never with a ".." segment
//
// The rules: the path is percent-decoded once; a malformed escape ("%4", "%zz"), a NUL (decoded or raw),
// and an encoded slash ("%2F", which would name a different file than the one a proxy checked) are 400; so
// is a ".." segment, plain or encoded ("/../x", "/a/%2e%2e/b", "/..%2fx"): refused rather than resolved, as
// no legitimate link needs one. "." and empty segments are dropped; a path ending in '/' names its
// "index.html". Symbolic links under the root are followed (nginx's default, `disable_symlinks off`):
// what the root holds is the operator's to choose.
#ifndef SURGE_EXAMPLES_HTTP_STATIC_PATH_H_
#define SURGE_EXAMPLES_HTTP_STATIC_PATH_H_

#include <string>
#include <string_view>

namespace surge::http {

// Writes the file's path relative to the root into `relative` and returns 0, or returns the status to
// answer (400). `path` is RequestHead::path (origin-form, starts with '/').
int resolve_static_path(std::string_view path, std::string& relative);

// "text/html; charset=utf-8" for "x.html", ...; "application/octet-stream" for what it does not know.
std::string_view content_type_for(std::string_view path) noexcept;

}  // namespace surge::http

#endif  // SURGE_EXAMPLES_HTTP_STATIC_PATH_H_
