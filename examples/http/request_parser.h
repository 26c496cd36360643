// request_parser.h: the HTTP/1.1 request parser of the example HTTP service: request heads, and chunked
// bodies, parsed in place from the connection's input buffer. No I/O, no allocation, no exceptions; the
// libFuzzer target (request_parser_fuzzer.cc) drives it with arbitrary bytes.
//
//   surge::http::RequestHead head;
//   surge::http::HeadParser parser;                       // one per connection; reset() after each head
//   auto parsed = parser.parse(input, limits, head);      // input: the bytes received so far
//   if (parsed.state == surge::http::ParseState::kIncomplete) ... read more, call parse() again ...
//   if (parsed.state == surge::http::ParseState::kError) ... respond parsed.status, close ...
//   // kComplete: head's views point into `input`; the body (head.body) starts at input[parsed.consumed].
//
// Why our own parser rather than Boost.Beast's (header-only in Debian's libboost1.81-dev): the service
// must not allocate per request, must bound every length it accepts, and must resume an incomplete head
// without re-reading it. Beast's request_parser<> keeps its fields in an allocating container and copies
// them out of the buffer; its basic_parser<> avoids that, but would still hand us one callback per field to
// re-validate (Content-Length vs Transfer-Encoding, Host, Connection) and its error codes do not map onto
// the statuses we must answer (431, 413, 501, 505). What is strict here, and why (RFC 9112):
//   - lines end in CRLF; a bare LF or CR, obs-fold (a header line starting with a space or tab), whitespace
//     between a field name and its colon, and control characters in a value are 400: a peer and a proxy
//     that read such a request differently is how request smuggling works;
//   - HTTP/1.1 needs exactly one Host (400 otherwise);
//   - Content-Length together with Transfer-Encoding is 400; Content-Length values that disagree, or are
//     not plain digits, are 400; a transfer coding other than a lone "chunked" is 501 (HTTP/1.0: 400);
//   - a head over Limits::max_head_bytes, or with more than Limits::max_headers fields, is 431; a declared
//     body over Limits::max_body_bytes is 413; a version other than HTTP/1.0 and HTTP/1.1 is 505.
#ifndef SURGE_EXAMPLES_HTTP_REQUEST_PARSER_H_
#define SURGE_EXAMPLES_HTTP_REQUEST_PARSER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace surge::http {

struct Limits {
  // The request line, every header line and the empty line that ends them, CRLFs included.
  std::size_t max_head_bytes = 8192;
  // Header fields per request (and trailer fields per chunked body).
  std::size_t max_headers = 64;
  // A request body, by Content-Length or the sum of its chunks.
  std::uint64_t max_body_bytes = 1 << 20;
};

// The most Limits::max_headers may say. Every connection holds this many 32-byte slots in its RequestHead.
inline constexpr std::size_t kMaxHeaderFields = 100;

enum class Method : std::uint8_t { kGet, kHead, kPost, kPut, kDelete, kOptions, kPatch, kOther };

enum class BodyKind : std::uint8_t {
  kNone,     // no body (no Content-Length, no Transfer-Encoding; or Content-Length: 0)
  kLength,   // RequestHead::content_length bytes
  kChunked,  // Transfer-Encoding: chunked (decode with ChunkedDecoder)
};

struct HeaderField {
  std::string_view name;   // as sent (compare case-insensitively)
  std::string_view value;  // without the whitespace around it
};

// A parsed request head. Every view points into the buffer given to HeadParser::parse and is valid while
// that buffer holds those bytes; the one exception is `path` of an absolute-form target without a path
// ("http://host" or "http://host?q"), which is a static "/".
struct RequestHead {
  Method method = Method::kOther;
  std::string_view method_text;
  std::string_view target;  // as sent: origin-form ("/a?b"), absolute-form, or "*"
  std::string_view path;    // the target's path: origin-form up to '?', the path of an absolute-form
  std::string_view query;   // after '?', empty if none
  int version_minor = 1;    // HTTP/1.<version_minor>: 0 or 1
  BodyKind body = BodyKind::kNone;
  std::uint64_t content_length = 0;  // with BodyKind::kLength
  bool keep_alive = true;            // HTTP/1.1 unless "Connection: close"; HTTP/1.0 with "keep-alive"
  bool expect_continue = false;      // "Expect: 100-continue"
  std::string_view host;
  std::string_view if_modified_since;  // empty if absent
  std::size_t header_count = 0;
  std::array<HeaderField, kMaxHeaderFields> headers;

  // The first field named `name` (ASCII case-insensitive), or an empty view.
  std::string_view header(std::string_view name) const noexcept;
};

enum class ParseState : std::uint8_t { kIncomplete, kComplete, kError };

struct ParseResult {
  ParseState state = ParseState::kIncomplete;
  std::size_t consumed = 0;      // kComplete: the head's length (the body starts right after it)
  int status = 0;                // kError: the status to answer (400, 413, 431, 501, 505)
  std::string_view reason;       // kError: a short text for the response body and the logs
};

// Finds and parses one request head at the start of a buffer. Holds only how far it has searched for the
// head's end, so that a head arriving a byte at a time is scanned once, not once per byte.
class HeadParser {
 public:
  // `input` holds the bytes received since the previous request's end (the same first bytes on every call,
  // possibly more of them). kIncomplete: no complete head yet, and none of the limits is broken by what
  // has arrived; call again with more. Empty lines before the request line are skipped (RFC 9112 2.2).
  ParseResult parse(std::string_view input, const Limits& limits, RequestHead& head) noexcept;
  // For the next request (after kComplete, once the caller has moved past the head).
  void reset() noexcept {
    skipped_ = 0;
    scanned_ = 0;
  }

 private:
  std::size_t skipped_ = 0;  // input[0, skipped_) is empty lines (CRLFs) before the request line
  std::size_t scanned_ = 0;  // input[0, scanned_) holds no "\r\n\r\n" (and no head end)
};

// Decodes a chunked body incrementally: feed it whatever arrived, it consumes what it can and hands back
// the data bytes in place. Chunk extensions and trailer fields are checked and dropped.
class ChunkedDecoder {
 public:
  struct Step {
    std::size_t consumed = 0;  // bytes of `input` used (framing and data)
    std::string_view data;     // body bytes found in this step (a view into `input`; may be empty)
    bool done = false;         // the last chunk and the trailers have been read: the body is complete
    int status = 0;            // non-zero: the body is malformed (400) or too large (413, 431)
    std::string_view reason;
  };

  explicit ChunkedDecoder(const Limits& limits) noexcept : limits_(&limits) {}

  // Consumes from `input` until it has data to hand back, needs more input, is done, or fails. Call it
  // again with the rest of the input (input.substr(step.consumed)) while it makes progress.
  Step feed(std::string_view input) noexcept;
  std::uint64_t body_bytes() const noexcept { return total_; }

 private:
  enum class State : std::uint8_t {
    kSize, kExtension, kSizeLf, kData, kDataCr, kDataLf, kTrailerStart, kTrailer, kTrailerLf, kEndLf, kDone,
  };
  const Limits* limits_;
  State state_ = State::kSize;
  int size_digits_ = 0;
  std::uint64_t chunk_left_ = 0;
  std::uint64_t total_ = 0;
  std::size_t line_bytes_ = 0;      // of the current size line, or of the trailer section
  std::size_t trailer_fields_ = 0;
  bool trailer_has_colon_ = false;
};

// "Mon, 07 Dec 2026 23:17:32 GMT" (IMF-fixdate, RFC 9110 5.6.7): exactly 29 characters into `out`.
void format_http_date(std::int64_t unix_seconds, char out[29]) noexcept;
// Parses an IMF-fixdate; false for anything else (an If-Modified-Since that does not parse is ignored,
// RFC 9110 13.1.3).
bool parse_http_date(std::string_view text, std::int64_t& unix_seconds) noexcept;

// ASCII case-insensitive equality.
bool equals_ignore_case(std::string_view a, std::string_view b) noexcept;

}  // namespace surge::http

#endif  // SURGE_EXAMPLES_HTTP_REQUEST_PARSER_H_
