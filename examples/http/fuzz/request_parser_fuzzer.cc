// request_parser_fuzzer.cc: the libFuzzer target of the HTTP request parser (request_parser.h) and the
// static-path resolver (static_path.h). Built by run_fuzzer.sh with clang-14 (-fsanitize=fuzzer,address,
// undefined) and, with corpus_main.cc instead of libFuzzer, by //examples/http:request_parser_corpus_test.
//
// An input is four configuration bytes and then the bytes a client sends on one connection:
//   byte 0: Limits::max_head_bytes  (kHeadLimits[byte & 15])
//   byte 1: Limits::max_headers     (kFieldLimits[byte & 15])
//   byte 2: Limits::max_body_bytes  (kBodyLimits[byte & 15])
//   byte 3: how the bytes arrive: the largest piece (kPieceLimits[byte & 15]) and, with the rest of the
//           byte, the seed of the piece sizes
// The digits '0'..'9' select entries 0..9, so the corpus files stay readable: "0000GET / HTTP/1.1\r\n...".
//
// The stream is served twice the way a connection does it, once arriving in one piece and once in the
// chosen pieces: parse a head from the bytes received so far (more arrive while it is incomplete), skip a
// Content-Length body, decode a chunked one through ChunkedDecoder as it arrives, move on to the next
// pipelined request, stop at an error or after a request without keep-alive. Each head's path goes through
// resolve_static_path and its If-Modified-Since through parse_http_date. Any broken invariant traps:
//   - a parse never consumes more than it was given, and every view lies inside the buffer it was given;
//   - decoded data lies inside what the step consumed, the decoder's body_bytes() is the sum of its data
//     steps, and never exceeds max_body_bytes;
//   - both runs produce the same transcript (heads, statuses, decoded bodies, where the connection ended);
//   - a resolved path is relative, with no ".", ".." or empty segment, no NUL, no trailing '/';
//   - a parsed date formats back to a date that parses to the same time.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "examples/http/request_parser.h"
#include "examples/http/static_path.h"

namespace {

using surge::http::BodyKind;
using surge::http::ChunkedDecoder;
using surge::http::HeadParser;
using surge::http::Limits;
using surge::http::ParseResult;
using surge::http::ParseState;
using surge::http::RequestHead;

[[noreturn]] void fail() { __builtin_trap(); }
void check(bool condition) {
  if (!condition) fail();
}

constexpr std::size_t kHeadLimits[16] = {8192, 8192, 0, 1, 2, 3, 16, 31, 64, 100, 256, 1024, 4096, 8191, 16384, 65536};
constexpr std::size_t kFieldLimits[16] = {64, 0, 1, 2, 3, 4, 8, 16, 32, 63, 127, 128, 129, 1000, 65, 64};
constexpr std::uint64_t kBodyLimits[16] = {1 << 20, 0, 1, 2, 5, 10, 16, 100, 1000, 4096,
                                           (1 << 20) - 1, 1ull << 32, 1ull << 60, UINT64_MAX - 1, UINT64_MAX, 64};
constexpr std::size_t kPieceLimits[16] = {1, 1, 2, 3, 4, 5, 7, 8, 13, 16, 31, 64, 100, 256, 1000, 4096};

// Deterministic piece sizes (xorshift64*).
class Pieces {
 public:
  Pieces(std::uint64_t seed, std::size_t max_piece) : state_(seed * 0x9E3779B97F4A7C15ull | 1), max_(max_piece) {}
  std::size_t next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return 1 + static_cast<std::size_t>((state_ * 0x2545F4914F6CDD1Dull) >> 33) % max_;
  }

 private:
  std::uint64_t state_;
  std::size_t max_;
};

bool inside(std::string_view view, std::string_view buffer) {
  if (view.empty()) return true;
  const auto v = reinterpret_cast<std::uintptr_t>(view.data());
  const auto b = reinterpret_cast<std::uintptr_t>(buffer.data());
  return v >= b && v - b <= buffer.size() && view.size() <= buffer.size() - (v - b);
}

void append_view(std::string& out, std::string_view view) {
  out += std::to_string(view.size());
  out += ':';
  out.append(view);
  out += '|';
}

void check_head(const RequestHead& head, std::string_view buffer) {
  check(inside(head.method_text, buffer));
  check(inside(head.target, buffer));
  check(inside(head.path, buffer) || head.path == "/");  // absolute-form without a path: a static "/"
  check(inside(head.query, buffer));
  check(inside(head.host, buffer));
  check(inside(head.if_modified_since, buffer));
  check(head.header_count <= surge::http::kMaxHeaderFields);
  for (std::size_t i = 0; i < head.header_count; ++i) {
    check(inside(head.headers[i].name, buffer));
    check(inside(head.headers[i].value, buffer));
    check(!head.headers[i].name.empty());
  }
  check(head.version_minor == 0 || head.version_minor == 1);
  check(!head.method_text.empty() && !head.target.empty() && !head.path.empty());
  if (head.body == BodyKind::kLength) check(head.content_length > 0);
}

// A resolved path stays under the root whatever the request said. Returns it ("400" if refused).
std::string check_static_path(std::string_view path) {
  std::string relative;
  const int status = surge::http::resolve_static_path(path, relative);
  if (status != 0) {
    check(status == 400);
    return "400";
  }
  check(!path.empty() && path.front() == '/');
  check(!relative.empty() && relative.front() != '/' && relative.back() != '/');
  check(relative.find('\0') == std::string::npos);
  std::size_t begin = 0;
  while (true) {
    const std::size_t slash = relative.find('/', begin);
    const std::string_view segment = std::string_view(relative).substr(
        begin, slash == std::string::npos ? std::string::npos : slash - begin);
    check(!segment.empty() && segment != "." && segment != "..");
    if (slash == std::string::npos) break;
    begin = slash + 1;
  }
  check(!surge::http::content_type_for(relative).empty());
  return relative;
}

// A date that parses formats back to one that parses to the same time. Returns the time ("-" if none).
std::string check_date(std::string_view text) {
  std::int64_t seconds = 0;
  if (!surge::http::parse_http_date(text, seconds)) return "-";
  char formatted[29];
  surge::http::format_http_date(seconds, formatted);
  std::int64_t again = 0;
  check(surge::http::parse_http_date(std::string_view(formatted, 29), again));
  check(again == seconds);
  return std::to_string(seconds);
}

// Serves `stream` as one connection receiving it in pieces (max_piece 0: all at once) and returns what
// happened, as text.
std::string serve(std::string_view stream, const Limits& limits, std::uint64_t seed, std::size_t max_piece) {
  std::string transcript;
  Pieces pieces(seed, max_piece == 0 ? 1 : max_piece);
  std::size_t arrived = 0;
  std::string buffer;  // received and not yet consumed
  auto receive = [&]() -> bool {
    if (arrived == stream.size()) return false;
    std::size_t take = max_piece == 0 ? stream.size() - arrived : pieces.next();
    if (take > stream.size() - arrived) take = stream.size() - arrived;
    buffer.append(stream.substr(arrived, take));
    arrived += take;
    return true;
  };

  HeadParser parser;
  RequestHead head;
  std::uint64_t requests = 0;
  while (true) {
    // The head: parse what has arrived, receive more while it is incomplete.
    ParseResult result;
    while (true) {
      result = parser.parse(buffer, limits, head);
      if (result.state != ParseState::kIncomplete) break;
      check(result.consumed == 0);
      if (!receive()) {
        transcript += "end: incomplete head of " + std::to_string(buffer.size()) + " bytes\n";
        return transcript;
      }
    }
    if (result.state == ParseState::kError) {
      check(result.status == 400 || result.status == 413 || result.status == 431 || result.status == 501 ||
            result.status == 505);
      check(!result.reason.empty());
      transcript += "error " + std::to_string(result.status) + " ";
      transcript.append(result.reason);
      transcript += '\n';
      return transcript;
    }
    check(result.consumed > 0 && result.consumed <= buffer.size());
    check(result.consumed <= limits.max_head_bytes);
    check_head(head, std::string_view(buffer).substr(0, result.consumed));
    ++requests;

    transcript += "head ";
    append_view(transcript, head.method_text);
    append_view(transcript, head.target);
    append_view(transcript, head.path);
    append_view(transcript, head.query);
    append_view(transcript, head.host);
    append_view(transcript, head.if_modified_since);
    transcript += std::to_string(static_cast<int>(head.method)) + " 1." + std::to_string(head.version_minor) +
                  " body " + std::to_string(static_cast<int>(head.body)) + " " +
                  std::to_string(head.content_length) + (head.keep_alive ? " keep-alive" : " close") +
                  (head.expect_continue ? " expect" : "") + " consumed " + std::to_string(result.consumed) +
                  " fields " + std::to_string(head.header_count) + "\n";
    for (std::size_t i = 0; i < head.header_count; ++i) {
      transcript += "  ";
      append_view(transcript, head.headers[i].name);
      append_view(transcript, head.headers[i].value);
      transcript += '\n';
      // header() finds the first field of that name, by any spelling of it.
      std::string upper(head.headers[i].name);
      for (char& c : upper) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
      std::size_t first = 0;
      while (!surge::http::equals_ignore_case(head.headers[first].name, upper)) ++first;
      check(first <= i);
      const std::string_view found = head.header(upper);
      check(found.data() == head.headers[first].value.data() && found.size() == head.headers[first].value.size());
    }
    check(head.header_count <= limits.max_headers);
    if (head.body == BodyKind::kLength) check(head.content_length <= limits.max_body_bytes);
    transcript += "  static " + check_static_path(head.path) + " date " + check_date(head.if_modified_since) + "\n";
    char date[29];
    surge::http::format_http_date(static_cast<std::int64_t>(result.consumed) * 7919 * 86400, date);
    check_date(std::string_view(date, 29));

    const BodyKind body = head.body;
    const std::uint64_t content_length = head.content_length;
    const bool keep_alive = head.keep_alive;
    buffer.erase(0, result.consumed);  // the head's views are dead from here on
    parser.reset();

    if (body == BodyKind::kLength) {
      std::uint64_t left = content_length;
      while (left > 0) {
        if (buffer.empty() && !receive()) {
          transcript += "end: body short by " + std::to_string(left) + "\n";
          return transcript;
        }
        const std::size_t take = left < buffer.size() ? static_cast<std::size_t>(left) : buffer.size();
        buffer.erase(0, take);
        left -= take;
      }
      transcript += "body of " + std::to_string(content_length) + " bytes skipped\n";
    } else if (body == BodyKind::kChunked) {
      ChunkedDecoder decoder(limits);
      std::string decoded;
      std::uint64_t data_bytes = 0;
      while (true) {
        const ChunkedDecoder::Step step = decoder.feed(buffer);
        check(step.consumed <= buffer.size());
        check(step.data.size() <= step.consumed);
        check(inside(step.data, std::string_view(buffer).substr(0, step.consumed)));
        data_bytes += step.data.size();
        check(decoder.body_bytes() == data_bytes);
        check(data_bytes <= limits.max_body_bytes);
        decoded.append(step.data);
        buffer.erase(0, step.consumed);
        if (step.status != 0) {
          check(step.status == 400 || step.status == 413 || step.status == 431);
          check(!step.done && !step.reason.empty());
          transcript += "chunked error " + std::to_string(step.status) + " ";
          transcript.append(step.reason);
          transcript += " after " + std::to_string(decoded.size()) + "\n";
          return transcript;
        }
        if (step.done) {
          // Done is final: nothing more is consumed.
          const ChunkedDecoder::Step after = decoder.feed(buffer);
          check(after.done && after.consumed == 0 && after.data.empty() && after.status == 0);
          break;
        }
        if (step.consumed == 0 && !receive()) {
          transcript += "end: chunked body incomplete after " + std::to_string(decoded.size()) + " bytes\n";
          append_view(transcript, decoded);
          return transcript;
        }
      }
      transcript += "chunked ";
      append_view(transcript, decoded);
      transcript += '\n';
    }
    if (!keep_alive) {
      transcript += "close\n";
      return transcript;
    }
    check(requests <= stream.size());  // each request consumes at least one byte
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  Limits limits;
  limits.max_head_bytes = kHeadLimits[data[0] & 15];
  limits.max_headers = kFieldLimits[data[1] & 15];
  limits.max_body_bytes = kBodyLimits[data[2] & 15];
  const std::size_t max_piece = kPieceLimits[data[3] & 15];
  const std::uint64_t seed = data[3] >> 4;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 4, size - 4);

  const std::string whole = serve(stream, limits, seed, 0);
  const std::string pieces = serve(stream, limits, seed, max_piece);
#ifdef REQUEST_PARSER_FUZZER_PRINT  // to read what an input does: -DREQUEST_PARSER_FUZZER_PRINT
  std::fprintf(stderr, "--- whole:\n%s--- in pieces of at most %zu:\n%s", whole.c_str(), max_piece, pieces.c_str());
#endif
  if (whole != pieces) fail();

  // The resolver alone, on the stream as a path (bounded like a request target is).
  check_static_path(stream.substr(0, 8192));
  check_date(stream.substr(0, 29));
  return 0;
}
