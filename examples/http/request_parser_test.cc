// The request parser's rules (request_parser.h), one test per rule: heads complete and incomplete, fed
// whole and a byte at a time, pipelined; every status it answers; keep-alive; targets; the chunked decoder
// fed whole and split at every byte; IMF-fixdate.
#include "examples/http/request_parser.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace surge::http {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

// A parse's result and the head, with the input it points into (on the heap, so that the views survive
// moving a Parsed).
struct Parsed {
  std::unique_ptr<std::string> input;
  ParseResult result;
  RequestHead head;
};

// The whole input in one call.
Parsed parse_whole(std::string_view input, const Limits& limits = {}) {
  Parsed parsed;
  parsed.input = std::make_unique<std::string>(input);
  HeadParser parser;
  parsed.result = parser.parse(*parsed.input, limits, parsed.head);
  return parsed;
}

// The input as a connection receives it a byte at a time: parse() on each longer prefix until it stops
// answering kIncomplete. `calls` counts the calls.
Parsed parse_bytewise(std::string_view input, const Limits& limits = {}, std::size_t* calls = nullptr) {
  Parsed parsed;
  parsed.input = std::make_unique<std::string>(input);
  const std::string_view all = *parsed.input;
  HeadParser parser;
  for (std::size_t size = 1; size <= all.size(); ++size) {
    if (calls != nullptr) ++*calls;
    parsed.result = parser.parse(all.substr(0, size), limits, parsed.head);
    if (parsed.result.state != ParseState::kIncomplete) break;
  }
  return parsed;
}

// The status of `input` (0 for a complete head, -1 for an incomplete one), checking that a byte at a time
// gives the same answer as all at once.
int status_of(std::string_view input, const Limits& limits = {}) {
  const Parsed whole = parse_whole(input, limits);
  const Parsed bytewise = parse_bytewise(input, limits);
  const std::string_view shown = input.substr(0, 200);
  EXPECT_EQ(whole.result.state, bytewise.result.state) << shown;
  EXPECT_EQ(whole.result.status, bytewise.result.status) << shown;
  EXPECT_EQ(whole.result.consumed, bytewise.result.consumed) << shown;
  if (whole.result.state == ParseState::kIncomplete) return -1;
  if (whole.result.state == ParseState::kComplete) return 0;
  EXPECT_FALSE(whole.result.reason.empty());
  return whole.result.status;
}

std::string request(std::string_view headers, std::string_view line = "GET / HTTP/1.1") {
  return std::string(line) + "\r\n" + std::string(headers) + "\r\n";
}

// ---------------------------------------------------------------------------------------------------------
// Heads: complete, incomplete, a byte at a time, leading empty lines, pipelined.

TEST(HeadParser, ParsesACompleteHead) {
  const std::string input = "GET /index.html?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n"
                            "User-Agent:  curl/8  \r\n\r\n";
  const Parsed parsed = parse_whole(input);
  ASSERT_EQ(parsed.result.state, ParseState::kComplete) << parsed.result.reason;
  EXPECT_EQ(parsed.result.consumed, input.size());
  const RequestHead& head = parsed.head;
  EXPECT_EQ(head.method, Method::kGet);
  EXPECT_EQ(head.method_text, "GET");
  EXPECT_EQ(head.target, "/index.html?x=1&y=2");
  EXPECT_EQ(head.path, "/index.html");
  EXPECT_EQ(head.query, "x=1&y=2");
  EXPECT_EQ(head.version_minor, 1);
  EXPECT_EQ(head.body, BodyKind::kNone);
  EXPECT_TRUE(head.keep_alive);
  EXPECT_FALSE(head.expect_continue);
  EXPECT_EQ(head.host, "example.com");
  EXPECT_TRUE(head.if_modified_since.empty());
  ASSERT_EQ(head.header_count, 3u);
  EXPECT_EQ(head.headers[0].name, "Host");
  EXPECT_EQ(head.headers[1].name, "Accept");
  EXPECT_EQ(head.headers[1].value, "*/*");
  EXPECT_EQ(head.headers[2].value, "curl/8");  // the whitespace around a value is not part of it
  // Views point into the input.
  const std::string& parsed_input = *parsed.input;
  EXPECT_EQ(head.target.data(), parsed_input.data() + 4);
  EXPECT_EQ(head.headers[2].value.data(), parsed_input.data() + parsed_input.find("curl/8"));
}

TEST(HeadParser, MethodsAreRecognised) {
  const std::pair<std::string_view, Method> cases[] = {
      {"GET", Method::kGet},         {"HEAD", Method::kHead},   {"POST", Method::kPost},
      {"PUT", Method::kPut},         {"DELETE", Method::kDelete}, {"OPTIONS", Method::kOptions},
      {"PATCH", Method::kPatch},     {"BREW", Method::kOther},  {"get", Method::kOther},
  };
  for (const auto& [text, method] : cases) {
    const Parsed parsed = parse_whole(request("Host: a\r\n", std::string(text) + " / HTTP/1.1"));
    ASSERT_EQ(parsed.result.state, ParseState::kComplete) << text;
    EXPECT_EQ(parsed.head.method, method) << text;
    EXPECT_EQ(parsed.head.method_text, text);
  }
}

TEST(HeadParser, EveryPrefixOfAHeadIsIncomplete) {
  const std::string input = "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n";
  for (std::size_t size = 0; size < input.size(); ++size) {
    HeadParser parser;
    RequestHead head;
    const ParseResult result = parser.parse(std::string_view(input).substr(0, size), Limits{}, head);
    EXPECT_EQ(result.state, ParseState::kIncomplete) << size;
    EXPECT_EQ(result.consumed, 0u);
  }
  EXPECT_EQ(status_of(input), 0);
}

TEST(HeadParser, AByteAtATimeGivesTheSameHeadAsAllAtOnce) {
  const std::string input =
      "PUT http://example.com:8080/a/b?c=d HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n"
      "Content-Length: 12\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\nX-Empty:\r\n\r\nbody follows";
  const Parsed whole = parse_whole(input);
  std::size_t calls = 0;
  const Parsed bytewise = parse_bytewise(input, Limits{}, &calls);
  ASSERT_EQ(whole.result.state, ParseState::kComplete) << whole.result.reason;
  ASSERT_EQ(bytewise.result.state, ParseState::kComplete) << bytewise.result.reason;
  EXPECT_EQ(calls, input.find("\r\n\r\n") + 4);  // complete as soon as the empty line ends
  EXPECT_EQ(whole.result.consumed, bytewise.result.consumed);
  EXPECT_EQ(std::string_view(input).substr(whole.result.consumed), "body follows");
  const RequestHead& a = whole.head;
  const RequestHead& b = bytewise.head;
  EXPECT_EQ(a.method, b.method);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.path, "/a/b");
  EXPECT_EQ(a.query, b.query);
  EXPECT_EQ(a.version_minor, 0);
  EXPECT_EQ(b.version_minor, 0);
  EXPECT_EQ(a.body, BodyKind::kLength);
  EXPECT_EQ(b.body, BodyKind::kLength);
  EXPECT_EQ(a.content_length, 12u);
  EXPECT_EQ(b.content_length, 12u);
  EXPECT_TRUE(a.keep_alive);
  EXPECT_TRUE(b.keep_alive);
  EXPECT_EQ(a.if_modified_since, b.if_modified_since);
  EXPECT_EQ(a.if_modified_since, "Sun, 06 Nov 1994 08:49:37 GMT");
  ASSERT_EQ(a.header_count, b.header_count);
  for (std::size_t i = 0; i < a.header_count; ++i) {
    EXPECT_EQ(a.headers[i].name, b.headers[i].name);
    EXPECT_EQ(a.headers[i].value, b.headers[i].value);
  }
  EXPECT_EQ(b.header("x-empty"), "");
}

// A head arriving a byte at a time is scanned once: a 4 MiB head fed one byte per call takes a few million
// cheap calls. Scanning it again from the start on each call (what "scanned once" rules out) would read
// ~8e12 bytes and could not finish in the time a small test has; the bound below is 100x what a linear
// scan needs even under the sanitizers, so it fails with a message rather than by the test's timeout.
TEST(HeadParser, AHugeHeadFedAByteAtATimeIsScannedOnce) {
  Limits limits;
  limits.max_head_bytes = 8u << 20;
  std::string input = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 32; ++i) input += "X-Long-" + std::to_string(i) + ": " + std::string(128 << 10, 'v') + "\r\n";
  input += "\r\n";
  const auto started = std::chrono::steady_clock::now();
  HeadParser parser;
  RequestHead head;
  ParseResult result;
  std::size_t size = 1;
  for (; size <= input.size(); ++size) {
    result = parser.parse(std::string_view(input).substr(0, size), limits, head);
    if (result.state != ParseState::kIncomplete) break;
    if ((size & 0xffff) == 0) {
      ASSERT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30))
          << "at byte " << size << " of " << input.size() << ": the head is being rescanned";
    }
  }
  ASSERT_EQ(result.state, ParseState::kComplete) << result.reason;
  EXPECT_EQ(size, input.size());
  EXPECT_EQ(result.consumed, input.size());
  EXPECT_EQ(head.header_count, 33u);
}

// The same with the head preceded by 2 MiB of empty lines (skipped, RFC 9112 2.2): they are not skipped
// again on every call either.
TEST(HeadParser, LeadingEmptyLinesFedAByteAtATimeAreSkippedOnce) {
  Limits limits;
  limits.max_head_bytes = 8u << 20;
  std::string input;
  for (int i = 0; i < (1 << 20); ++i) input += "\r\n";
  input += "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  const auto started = std::chrono::steady_clock::now();
  HeadParser parser;
  RequestHead head;
  ParseResult result;
  std::size_t size = 1;
  for (; size <= input.size(); ++size) {
    result = parser.parse(std::string_view(input).substr(0, size), limits, head);
    if (result.state != ParseState::kIncomplete) break;
    if ((size & 0xffff) == 0) {
      ASSERT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30))
          << "at byte " << size << " of " << input.size() << ": the empty lines are being rescanned";
    }
  }
  ASSERT_EQ(result.state, ParseState::kComplete) << result.reason;
  EXPECT_EQ(result.consumed, input.size());
  EXPECT_EQ(head.path, "/");
}

TEST(HeadParser, LeadingEmptyLinesAreSkippedAndCounted) {
  const std::string input = "\r\n\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n";
  const Parsed parsed = parse_whole(input);
  ASSERT_EQ(parsed.result.state, ParseState::kComplete) << parsed.result.reason;
  EXPECT_EQ(parsed.result.consumed, input.size());  // the empty lines are part of what the head used
  EXPECT_EQ(parsed.head.path, "/x");
  EXPECT_EQ(status_of(input), 0);
  // Empty lines alone (or with a CR of the next one) are not a request yet.
  EXPECT_EQ(status_of("\r\n\r\n"), -1);
  EXPECT_EQ(status_of("\r\n\r"), -1);
  // They count towards the head's limit.
  Limits limits;
  limits.max_head_bytes = input.size();
  EXPECT_EQ(status_of(input, limits), 0);
  EXPECT_EQ(status_of("\r\n" + input, limits), 431);
  std::string only_empty_lines;
  for (int i = 0; i < 5000; ++i) only_empty_lines += "\r\n";
  EXPECT_EQ(status_of(only_empty_lines), 431);
  // A bare LF among them is refused.
  EXPECT_EQ(status_of("\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

TEST(HeadParser, PipelinedHeadsParseBackToBack) {
  const std::string first = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string second = "POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
  const std::string third = "HEAD /three HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  const std::string input = first + second + third;

  HeadParser parser;
  RequestHead head;
  std::string_view rest = input;
  std::vector<std::string> paths;
  for (int i = 0; i < 3; ++i) {
    const ParseResult result = parser.parse(rest, Limits{}, head);
    ASSERT_EQ(result.state, ParseState::kComplete) << i << ": " << result.reason;
    paths.emplace_back(head.path);
    std::size_t used = result.consumed;
    if (head.body == BodyKind::kLength) used += head.content_length;
    rest.remove_prefix(used);
    parser.reset();
  }
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(paths, (std::vector<std::string>{"/one", "/two", "/three"}));
  EXPECT_FALSE(head.keep_alive);

  // The first head's result does not depend on what follows it, even a partial or broken next request.
  for (std::string_view after : {"GET /next HT"sv, "GARBAGE\n\n"sv, "\r\n"sv}) {
    const Parsed parsed = parse_whole(first + std::string(after));
    ASSERT_EQ(parsed.result.state, ParseState::kComplete) << after;
    EXPECT_EQ(parsed.result.consumed, first.size());
  }
}

// reset() forgets how far the previous head was scanned: without it, a second, shorter head would be
// searched from the old position.
TEST(HeadParser, ResetStartsTheNextHeadFromScratch) {
  HeadParser parser;
  RequestHead head;
  const std::string first = "GET /a-rather-long-path-for-the-first-request HTTP/1.1\r\nHost: a\r\n";
  ASSERT_EQ(parser.parse(first, Limits{}, head).state, ParseState::kIncomplete);
  ASSERT_EQ(parser.parse(first + "\r\n", Limits{}, head).state, ParseState::kComplete);
  parser.reset();
  const std::string second = "GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
  const ParseResult result = parser.parse(second, Limits{}, head);
  ASSERT_EQ(result.state, ParseState::kComplete) << result.reason;
  EXPECT_EQ(head.path, "/b");
  EXPECT_EQ(result.consumed, second.size());
}

// A parse reuses the RequestHead of the previous request: nothing of it may leak into the next one.
TEST(HeadParser, ReusedHeadCarriesNothingOver) {
  HeadParser parser;
  RequestHead head;
  const std::string first = "POST /a?q HTTP/1.0\r\nHost: h\r\nContent-Length: 7\r\nExpect: 100-continue\r\n"
                            "If-Modified-Since: x\r\n\r\n";
  ASSERT_EQ(parser.parse(first, Limits{}, head).state, ParseState::kComplete);
  parser.reset();
  const std::string second = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  ASSERT_EQ(parser.parse(second, Limits{}, head).state, ParseState::kComplete);
  EXPECT_EQ(head.method, Method::kGet);
  EXPECT_TRUE(head.query.empty());
  EXPECT_EQ(head.version_minor, 1);
  EXPECT_EQ(head.body, BodyKind::kNone);
  EXPECT_EQ(head.content_length, 0u);
  EXPECT_FALSE(head.expect_continue);
  EXPECT_TRUE(head.if_modified_since.empty());
  EXPECT_TRUE(head.keep_alive);
  EXPECT_EQ(head.header_count, 1u);
  EXPECT_TRUE(head.header("content-length").empty());
}

// ---------------------------------------------------------------------------------------------------------
// 400: malformed requests.

TEST(HeadParser, BareLfIs400) {
  EXPECT_EQ(status_of("GET / HTTP/1.1\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\n\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\n\n"), 400);
  // Refused as soon as it arrives, not once the head is complete (which it may never be).
  EXPECT_EQ(status_of("GET / HTTP/1.1\nHost: a"), 400);
}

TEST(HeadParser, BareCrIs400) {
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\rX\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHo\rst: a\r\n\r\n"), 400);
}

TEST(HeadParser, ObsFoldIs400) {
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n"), 400);
  // Whitespace before the first field too.
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400);
}

TEST(HeadParser, WhitespaceBeforeTheColonIs400) {
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n"), 400);
}

TEST(HeadParser, MalformedFieldsAre400) {
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\n: empty-name\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nBad(Name): v\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX\x80: v\r\n\r\n"), 400);
}

TEST(HeadParser, ControlCharactersInAValueAre400) {
  for (char c : {'\0', '\x01', '\x08', '\x0b', '\x0c', '\x1f', '\x7f'}) {
    std::string input = "GET / HTTP/1.1\r\nHost: a\r\nX-A: b_c\r\n\r\n";
    input[input.find('_')] = c;
    EXPECT_EQ(status_of(input), 400) << static_cast<int>(c);
  }
  // A tab and obs-text (0x80-0xFF) are allowed.
  const Parsed parsed = parse_whole("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\tc\xe9\xff\r\n\r\n");
  ASSERT_EQ(parsed.result.state, ParseState::kComplete) << parsed.result.reason;
  EXPECT_EQ(parsed.head.header("X-A"), "b\tc\xe9\xff");
}

TEST(HeadParser, MalformedRequestLinesAre400) {
  for (std::string_view line : {
           "GET  / HTTP/1.1"sv,        // two spaces
           "GET / HTTP/1.1 "sv,        // trailing space
           " GET / HTTP/1.1"sv,        // leading space
           "GET /"sv,                  // no version
           "GET / "sv,                 // empty version
           "GET"sv,                    // method only
           "/ HTTP/1.1"sv,             // no method
           "G(T / HTTP/1.1"sv,         // not a token
           "GET /a\x01 HTTP/1.1"sv,    // control character in the target
           "GET /a\x80 HTTP/1.1"sv,    // non-ASCII in the target
           "GET a/b HTTP/1.1"sv,       // neither origin- nor absolute-form
           "GET ftp://a/b HTTP/1.1"sv, // not http(s)
           "GET http:///b HTTP/1.1"sv, // absolute-form without an authority
           "GET http:// HTTP/1.1"sv,   // absolute-form that is nothing but a scheme
           "GET * HTTP/1.1"sv,         // "*" is for OPTIONS only
       }) {
    EXPECT_EQ(status_of(request("Host: a\r\n", line)), 400) << line;
  }
  // Methods longer than 32 characters are refused.
  EXPECT_EQ(status_of(request("Host: a\r\n", std::string(32, 'M') + " / HTTP/1.1")), 0);
  EXPECT_EQ(status_of(request("Host: a\r\n", std::string(33, 'M') + " / HTTP/1.1")), 400);
}

TEST(HeadParser, MalformedVersionIs400) {
  for (std::string_view version : {"HTTP/1"sv, "HTTP/1.1.1"sv, "http/1.1"sv, "HTTP/a.1"sv, "HTTP/1.x"sv,
                                   "HTTP/11"sv, "HTTP 1.1"sv, "HTTPS/1.1"sv, "HTTP/1,1"sv}) {
    EXPECT_EQ(status_of(request("Host: a\r\n", "GET / " + std::string(version))), 400) << version;
  }
}

TEST(HeadParser, UnsupportedVersionIs505) {
  for (std::string_view version : {"HTTP/2.0"sv, "HTTP/1.2"sv, "HTTP/1.9"sv, "HTTP/0.9"sv, "HTTP/3.0"sv}) {
    EXPECT_EQ(status_of(request("Host: a\r\n", "GET / " + std::string(version))), 505) << version;
  }
  EXPECT_EQ(status_of(request("Host: a\r\n", "GET / HTTP/1.0")), 0);
  EXPECT_EQ(status_of(request("Host: a\r\n", "GET / HTTP/1.1")), 0);
}

TEST(HeadParser, HostRules) {
  EXPECT_EQ(status_of(request("")), 400);                         // HTTP/1.1 without Host
  EXPECT_EQ(status_of(request("Accept: */*\r\n")), 400);
  EXPECT_EQ(status_of(request("Host: a\r\nHost: a\r\n")), 400);    // two, even if equal
  EXPECT_EQ(status_of(request("Host: a\r\nhOsT: b\r\n")), 400);
  EXPECT_EQ(status_of(request("", "GET / HTTP/1.0")), 0);          // HTTP/1.0 needs none
  EXPECT_EQ(status_of(request("Host: a\r\nHost: b\r\n", "GET / HTTP/1.0")), 400);
  EXPECT_EQ(status_of(request("Host:\r\n")), 0);                   // empty is allowed (RFC 9112 3.2)
  const Parsed parsed = parse_whole(request("HOST:  example.org:81 \r\n"));
  ASSERT_EQ(parsed.result.state, ParseState::kComplete);
  EXPECT_EQ(parsed.head.host, "example.org:81");
}

TEST(HeadParser, ContentLengthAndTransferEncodingTogetherAre400) {
  EXPECT_EQ(status_of(request("Host: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n")), 400);
  EXPECT_EQ(status_of(request("Host: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n")), 400);
  EXPECT_EQ(status_of(request("Host: a\r\nTransfer-Encoding: gzip\r\nContent-Length: 0\r\n")), 400);
}

TEST(HeadParser, ContentLengthRules) {
  // Conflicting values are 400; repeated equal ones are one length.
  EXPECT_EQ(status_of(request("Host: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n")), 400);
  const Parsed same = parse_whole(request("Host: a\r\nContent-Length: 5\r\ncontent-length: 005\r\n"));
  ASSERT_EQ(same.result.state, ParseState::kComplete) << same.result.reason;
  EXPECT_EQ(same.head.body, BodyKind::kLength);
  EXPECT_EQ(same.head.content_length, 5u);
  // Anything but plain digits is 400.
  for (std::string_view value : {""sv, "-1"sv, "+5"sv, "5 5"sv, "5,5"sv, "0x10"sv, "1e3"sv, "five"sv, "5;"sv}) {
    EXPECT_EQ(status_of(request("Host: a\r\nContent-Length: " + std::string(value) + "\r\n")), 400) << value;
  }
  // Content-Length: 0 is no body.
  const Parsed zero = parse_whole(request("Host: a\r\nContent-Length: 0\r\n"));
  ASSERT_EQ(zero.result.state, ParseState::kComplete);
  EXPECT_EQ(zero.head.body, BodyKind::kNone);
}

TEST(HeadParser, BodyOverTheLimitIs413) {
  Limits limits;
  limits.max_body_bytes = 1000;
  EXPECT_EQ(status_of(request("Host: a\r\nContent-Length: 1000\r\n"), limits), 0);
  EXPECT_EQ(status_of(request("Host: a\r\nContent-Length: 1001\r\n"), limits), 413);
  EXPECT_EQ(status_of(request("Host: a\r\nContent-Length: 1048577\r\n")), 413);  // the default, 1 MiB
  EXPECT_EQ(status_of(request("Host: a\r\nContent-Length: 1048576\r\n")), 0);
  // Digit strings beyond 64 bits are 413, not an overflow into a small number...
  EXPECT_EQ(status_of(request("Host: a\r\nContent-Length: 18446744073709551616\r\n")), 413);  // 2^64
  EXPECT_EQ(status_of(request("Host: a\r\nContent-Length: " + std::string(2000, '9') + "\r\n")), 413);
  EXPECT_EQ(status_of(request("Host: a\r\nContent-Length: 1" + std::string(30, '0') + "\r\n")), 413);
  // ... unless a character further on makes them malformed.
  EXPECT_EQ(status_of(request("Host: a\r\nContent-Length: " + std::string(40, '9') + "x\r\n")), 400);
  // Two huge values against one small one conflict.
  EXPECT_EQ(status_of(request("Host: a\r\nContent-Length: 5\r\nContent-Length: " + std::string(40, '9') + "\r\n")),
            400);
}

TEST(HeadParser, TransferCodingRules) {
  const Parsed chunked = parse_whole(request("Host: a\r\nTransfer-Encoding: Chunked\r\n", "POST / HTTP/1.1"));
  ASSERT_EQ(chunked.result.state, ParseState::kComplete) << chunked.result.reason;
  EXPECT_EQ(chunked.head.body, BodyKind::kChunked);
  // Other codings, or chunked combined with one, are 501.
  EXPECT_EQ(status_of(request("Host: a\r\nTransfer-Encoding: gzip\r\n")), 501);
  EXPECT_EQ(status_of(request("Host: a\r\nTransfer-Encoding: gzip, chunked\r\n")), 501);
  EXPECT_EQ(status_of(request("Host: a\r\nTransfer-Encoding: chunked, gzip\r\n")), 501);
  EXPECT_EQ(status_of(request("Host: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n")), 501);
  EXPECT_EQ(status_of(request("Host: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")), 501);
  EXPECT_EQ(status_of(request("Host: a\r\nTransfer-Encoding:\r\n")), 501);
  // HTTP/1.0 has no transfer codings (RFC 9112 6.1): 400.
  EXPECT_EQ(status_of(request("Transfer-Encoding: chunked\r\n", "POST / HTTP/1.0")), 400);
  EXPECT_EQ(status_of(request("Transfer-Encoding: gzip\r\n", "POST / HTTP/1.0")), 400);
}

// ---------------------------------------------------------------------------------------------------------
// 431: the head's size and field count.

TEST(HeadParser, HeadOverTheLimitIs431) {
  // Exactly 8192 bytes (CRLFs included) is allowed; one more is 431.
  const std::string start = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
  const std::size_t pad = 8192 - start.size() - 4;
  const std::string fits = start + std::string(pad, 'p') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), 8192u);
  EXPECT_EQ(status_of(fits), 0);
  EXPECT_EQ(status_of(start + std::string(pad + 1, 'p') + "\r\n\r\n"), 431);
  // An incomplete head is 431 as soon as it reaches the limit, without waiting for its end.
  EXPECT_EQ(status_of(start + std::string(pad + 3, 'p')), -1);
  EXPECT_EQ(status_of(start + std::string(pad + 4, 'p')), 431);
  EXPECT_EQ(status_of(std::string(100000, 'G')), 431);
  // The limit is the caller's.
  Limits small;
  small.max_head_bytes = 64;
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(40, 'x') + "\r\n\r\n", small), 431);
}

// What lies past the limit is never looked at: a head that is too large is 431 whatever comes after the
// limit, whether it arrives in one read or a byte at a time.
TEST(HeadParser, NothingPastTheLimitIsRead) {
  const std::string start = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
  const std::string head = start + std::string(9000 - start.size(), 'p');
  EXPECT_EQ(status_of(head + "\n\r\n\r\n"), 431);      // a bare LF past the limit
  EXPECT_EQ(status_of(head + "\r\n\r\n"), 431);
  Limits limits;
  limits.max_head_bytes = 30;
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: abcdefgh\n\r\n", limits), 431);  // the LF is at byte 31
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: abcdef\n\r\n", limits), 400);    // the LF is at byte 29
}

TEST(HeadParser, TooManyFieldsIs431) {
  std::string fields = "Host: a\r\n";
  for (int i = 1; i < 64; ++i) fields += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(status_of(request(fields)), 0);  // 64, the default
  EXPECT_EQ(status_of(request(fields + "X-64: v\r\n")), 431);
  Limits limits;
  limits.max_headers = 2;
  EXPECT_EQ(status_of(request("Host: a\r\nA: 1\r\n"), limits), 0);
  EXPECT_EQ(status_of(request("Host: a\r\nA: 1\r\nB: 2\r\n"), limits), 431);
  // Limits::max_headers above kMaxHeaderFields is capped at kMaxHeaderFields.
  limits.max_headers = 100000;
  limits.max_head_bytes = 1 << 20;
  std::string many = "Host: a\r\n";
  for (std::size_t i = 1; i < kMaxHeaderFields; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(status_of(request(many), limits), 0);
  EXPECT_EQ(status_of(request(many + "X-last: v\r\n"), limits), 431);
}

// ---------------------------------------------------------------------------------------------------------
// Connection, targets, Expect, header().

TEST(HeadParser, KeepAliveRules) {
  struct Case {
    std::string_view line;
    std::string_view headers;
    bool keep_alive;
  };
  const Case cases[] = {
      {"GET / HTTP/1.1", "Host: a\r\n", true},
      {"GET / HTTP/1.1", "Host: a\r\nConnection: close\r\n", false},
      {"GET / HTTP/1.1", "Host: a\r\nConnection: Close\r\n", false},
      {"GET / HTTP/1.1", "Host: a\r\nConnection: upgrade, close\r\n", false},
      {"GET / HTTP/1.1", "Host: a\r\nConnection: keep-alive\r\nConnection: close\r\n", false},
      {"GET / HTTP/1.1", "Host: a\r\nConnection: closed\r\n", true},  // a different token
      {"GET / HTTP/1.1", "Host: a\r\nConnection: keep-alive\r\n", true},
      {"GET / HTTP/1.0", "", false},
      {"GET / HTTP/1.0", "Connection: keep-alive\r\n", true},
      {"GET / HTTP/1.0", "Connection: Keep-Alive\r\n", true},
      {"GET / HTTP/1.0", "Connection: TE ,  keep-alive \r\n", true},
      {"GET / HTTP/1.0", "Connection: keep-alive, close\r\n", false},
      {"GET / HTTP/1.0", "Connection: keep-alive-please\r\n", false},
  };
  for (const Case& c : cases) {
    const Parsed parsed = parse_whole(request(c.headers, c.line));
    ASSERT_EQ(parsed.result.state, ParseState::kComplete) << c.line << " " << c.headers;
    EXPECT_EQ(parsed.head.keep_alive, c.keep_alive) << c.line << " " << c.headers;
  }
}

TEST(HeadParser, AbsoluteFormAndAsteriskTargets) {
  struct Case {
    std::string_view target;
    std::string_view path;
    std::string_view query;
  };
  const Case cases[] = {
      {"http://example.com/a/b?c=d", "/a/b", "c=d"},
      {"HTTPS://example.com:443/x", "/x", ""},
      {"http://example.com", "/", ""},
      {"http://example.com?q=1", "/", "q=1"},
      {"http://user@example.com/p?", "/p", ""},
  };
  for (const Case& c : cases) {
    const Parsed parsed = parse_whole(request("Host: example.com\r\n", "GET " + std::string(c.target) + " HTTP/1.1"));
    ASSERT_EQ(parsed.result.state, ParseState::kComplete) << c.target << ": " << parsed.result.reason;
    EXPECT_EQ(parsed.head.target, c.target);
    EXPECT_EQ(parsed.head.path, c.path) << c.target;
    EXPECT_EQ(parsed.head.query, c.query) << c.target;
  }
  const Parsed options = parse_whole(request("Host: a\r\n", "OPTIONS * HTTP/1.1"));
  ASSERT_EQ(options.result.state, ParseState::kComplete) << options.result.reason;
  EXPECT_EQ(options.head.target, "*");
  EXPECT_EQ(options.head.path, "*");
  EXPECT_TRUE(options.head.query.empty());
  EXPECT_EQ(status_of(request("Host: a\r\n", "GET * HTTP/1.1")), 400);
}

TEST(HeadParser, QuerySplitsAtTheFirstQuestionMark) {
  const std::pair<std::string_view, std::pair<std::string_view, std::string_view>> cases[] = {
      {"/a", {"/a", ""}},
      {"/a?", {"/a", ""}},
      {"/a?b", {"/a", "b"}},
      {"/a?b?c=/d", {"/a", "b?c=/d"}},
      {"/?x", {"/", "x"}},
      {"/a%3Fb?c", {"/a%3Fb", "c"}},  // no decoding here
  };
  for (const auto& [target, expected] : cases) {
    const Parsed parsed = parse_whole(request("Host: a\r\n", "GET " + std::string(target) + " HTTP/1.1"));
    ASSERT_EQ(parsed.result.state, ParseState::kComplete) << target;
    EXPECT_EQ(parsed.head.path, expected.first) << target;
    EXPECT_EQ(parsed.head.query, expected.second) << target;
  }
}

TEST(HeadParser, ExpectContinue) {
  EXPECT_TRUE(parse_whole(request("Host: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n")).head.expect_continue);
  EXPECT_TRUE(parse_whole(request("Host: a\r\nEXPECT:   100-Continue  \r\n")).head.expect_continue);
  EXPECT_FALSE(parse_whole(request("Host: a\r\nExpect: 200-ok\r\n")).head.expect_continue);
  EXPECT_FALSE(parse_whole(request("Host: a\r\nX-Expect: 100-continue\r\n")).head.expect_continue);
  EXPECT_FALSE(parse_whole(request("Host: a\r\n")).head.expect_continue);
}

TEST(HeadParser, IfModifiedSinceIsExposed) {
  const Parsed parsed = parse_whole(request("Host: a\r\nif-modified-since: Sun, 06 Nov 1994 08:49:37 GMT \r\n"));
  ASSERT_EQ(parsed.result.state, ParseState::kComplete);
  EXPECT_EQ(parsed.head.if_modified_since, "Sun, 06 Nov 1994 08:49:37 GMT");
}

TEST(HeadParser, HeaderLookup) {
  const Parsed parsed =
      parse_whole(request("Host: a\r\nX-Dup: first\r\nx-dup: second\r\nAccept-Encoding: gzip\r\nX-Empty:\r\n"));
  ASSERT_EQ(parsed.result.state, ParseState::kComplete);
  const RequestHead& head = parsed.head;
  EXPECT_EQ(head.header("X-Dup"), "first");  // the first of several
  EXPECT_EQ(head.header("X-DUP"), "first");
  EXPECT_EQ(head.header("accept-encoding"), "gzip");
  EXPECT_EQ(head.header("host"), "a");
  EXPECT_TRUE(head.header("X-Empty").empty());
  EXPECT_TRUE(head.header("X-Missing").empty());
  EXPECT_TRUE(head.header("X-Du").empty());
  EXPECT_TRUE(head.header("").empty());
}

TEST(EqualsIgnoreCase, ComparesAsciiOnly) {
  EXPECT_TRUE(equals_ignore_case("Content-Length", "content-LENGTH"));
  EXPECT_TRUE(equals_ignore_case("", ""));
  EXPECT_FALSE(equals_ignore_case("a", "ab"));
  EXPECT_FALSE(equals_ignore_case("[", "{"));  // 0x5B and 0x7B differ by 0x20 but are not letters
  EXPECT_FALSE(equals_ignore_case("\xc9", "\xe9"));
}

// ---------------------------------------------------------------------------------------------------------
// ChunkedDecoder.

struct Decoded {
  std::string body;
  bool done = false;
  int status = 0;
  std::size_t consumed = 0;  // of the whole input
  std::uint64_t body_bytes = 0;
};

// Feeds `input` to a decoder the way a connection does: the pieces arrive one after another (split at the
// given offsets), and the decoder is fed what has arrived and not yet been consumed, while it progresses.
Decoded decode(std::string_view input, const std::vector<std::size_t>& splits, const Limits& limits = {}) {
  ChunkedDecoder decoder(limits);
  Decoded out;
  std::string pending;
  std::size_t arrived = 0;
  std::size_t next_split = 0;
  while (true) {
    const ChunkedDecoder::Step step = decoder.feed(pending);
    EXPECT_LE(step.consumed, pending.size());
    if (!step.data.empty()) {
      EXPECT_GE(step.data.data(), pending.data());
      EXPECT_LE(step.data.data() + step.data.size(), pending.data() + step.consumed);
    }
    out.body.append(step.data);
    out.consumed += step.consumed;
    pending.erase(0, step.consumed);
    if (step.status != 0) {
      EXPECT_FALSE(step.reason.empty());
      out.status = step.status;
      break;
    }
    if (step.done) {
      out.done = true;
      break;
    }
    if (step.consumed == 0) {
      if (arrived == input.size()) break;
      const std::size_t until = next_split < splits.size() ? splits[next_split++] : input.size();
      pending.append(input.substr(arrived, until - arrived));
      arrived = until;
    }
  }
  out.body_bytes = decoder.body_bytes();
  return out;
}

Decoded decode_whole(std::string_view input, const Limits& limits = {}) { return decode(input, {}, limits); }

// Decoding `input` fed whole, split in two at every position, and a byte at a time gives one result.
Decoded decode_every_way(std::string_view input, const Limits& limits = {}) {
  const Decoded whole = decode_whole(input, limits);
  EXPECT_EQ(whole.body_bytes, whole.body.size());
  for (std::size_t split = 0; split <= input.size(); ++split) {
    const Decoded two = decode(input, {split}, limits);
    EXPECT_EQ(two.body, whole.body) << "split at " << split;
    EXPECT_EQ(two.done, whole.done) << "split at " << split;
    EXPECT_EQ(two.status, whole.status) << "split at " << split;
    EXPECT_EQ(two.consumed, whole.consumed) << "split at " << split;
  }
  std::vector<std::size_t> every_byte;
  for (std::size_t i = 1; i < input.size(); ++i) every_byte.push_back(i);
  const Decoded bytewise = decode(input, every_byte, limits);
  EXPECT_EQ(bytewise.body, whole.body);
  EXPECT_EQ(bytewise.done, whole.done);
  EXPECT_EQ(bytewise.status, whole.status);
  EXPECT_EQ(bytewise.consumed, whole.consumed);
  EXPECT_EQ(bytewise.body_bytes, whole.body_bytes);
  return whole;
}

TEST(ChunkedDecoder, DecodesABodyFedWholeOrSplitAnywhere) {
  const std::string input = "5\r\nhello\r\n1;a=b\r\n,\r\nA\r\n world 123\r\n0\r\n\r\n";
  const Decoded decoded = decode_every_way(input);
  EXPECT_TRUE(decoded.done);
  EXPECT_EQ(decoded.status, 0);
  EXPECT_EQ(decoded.body, "hello, world 123");
  EXPECT_EQ(decoded.body_bytes, 16u);
  EXPECT_EQ(decoded.consumed, input.size());
}

TEST(ChunkedDecoder, AnEmptyBody) {
  const Decoded decoded = decode_every_way("0\r\n\r\n");
  EXPECT_TRUE(decoded.done);
  EXPECT_EQ(decoded.body, "");
}

TEST(ChunkedDecoder, StopsAtTheEndOfTheBody) {
  const std::string body = "3\r\nabc\r\n0\r\n\r\n";
  const Decoded decoded = decode_every_way(body + "GET / HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(decoded.done);
  EXPECT_EQ(decoded.consumed, body.size());  // the next request is left for the head parser
  // Once done, it consumes nothing more.
  Limits limits;
  ChunkedDecoder decoder(limits);
  ChunkedDecoder::Step step = decoder.feed("0\r\n\r\n");
  ASSERT_TRUE(step.done);
  step = decoder.feed("1\r\nx\r\n");
  EXPECT_TRUE(step.done);
  EXPECT_EQ(step.consumed, 0u);
  EXPECT_TRUE(step.data.empty());
}

TEST(ChunkedDecoder, SizesAreHexInEitherCaseWithLeadingZeros) {
  std::string input = "00a\r\n" + std::string(10, 'x') + "\r\nF\r\n" + std::string(15, 'y') + "\r\n000\r\n\r\n";
  const Decoded decoded = decode_every_way(input);
  EXPECT_TRUE(decoded.done);
  EXPECT_EQ(decoded.body, std::string(10, 'x') + std::string(15, 'y'));
}

TEST(ChunkedDecoder, ExtensionsAreDropped) {
  const Decoded decoded =
      decode_every_way("3;name=value\r\nabc\r\n2 ; a=\"quoted; \\\"x\" ;b\r\nde\r\n1\t;x\r\nf\r\n0;last\r\n\r\n");
  EXPECT_TRUE(decoded.done);
  EXPECT_EQ(decoded.status, 0);
  EXPECT_EQ(decoded.body, "abcdef");
}

TEST(ChunkedDecoder, ExtensionRules) {
  EXPECT_EQ(decode_every_way("3;a=\x01\r\nabc\r\n0\r\n\r\n").status, 400);  // a control character
  EXPECT_EQ(decode_every_way("3;a=\nabc\r\n0\r\n\r\n").status, 400);        // a bare LF
  EXPECT_EQ(decode_whole("3;" + std::string(4096, 'e') + "\r\nabc\r\n0\r\n\r\n").status, 0);
  EXPECT_EQ(decode_whole("3;" + std::string(4097, 'e') + "\r\nabc\r\n0\r\n\r\n").status, 400);
}

TEST(ChunkedDecoder, TrailersAreCheckedAndDropped) {
  const Decoded decoded = decode_every_way("3\r\nabc\r\n0\r\nX-Checksum: 123\r\nX-Other:\r\n\r\nNEXT");
  EXPECT_TRUE(decoded.done);
  EXPECT_EQ(decoded.body, "abc");
  EXPECT_EQ(decoded.consumed, std::string_view("3\r\nabc\r\n0\r\nX-Checksum: 123\r\nX-Other:\r\n\r\n").size());
  EXPECT_EQ(decode_whole("0\r\nA: b\r\n\r\n").consumed, 11u);
  // Malformed trailer fields are 400.
  for (std::string_view trailer : {"NoColon\r\n"sv, "X :v\r\n"sv, ": v\r\n"sv, " X: v\r\n"sv, "X: a\x01\r\n"sv,
                                   "X: a\rb\r\n"sv, "X: a\n"sv, "X(y): v\r\n"sv}) {
    const Decoded bad = decode_every_way("0\r\n" + std::string(trailer) + "\r\n");
    EXPECT_EQ(bad.status, 400) << trailer;
    EXPECT_FALSE(bad.done);
  }
}

TEST(ChunkedDecoder, HugeTrailersAre431) {
  Limits limits;
  limits.max_head_bytes = 100;
  EXPECT_EQ(decode_every_way("0\r\nX: " + std::string(80, 'v') + "\r\n\r\n", limits).status, 0);
  EXPECT_EQ(decode_every_way("0\r\nX: " + std::string(120, 'v') + "\r\n\r\n", limits).status, 431);
  // The limit is on the trailer section as a whole, not per line.
  std::string many_lines;
  for (int i = 0; i < 20; ++i) many_lines += "X: vvvv\r\n";
  EXPECT_EQ(decode_every_way("0\r\n" + many_lines + "\r\n", limits).status, 431);
  // And on the number of fields.
  Limits few;
  few.max_headers = 2;
  EXPECT_EQ(decode_every_way("0\r\nA: 1\r\nB: 2\r\n\r\n", few).status, 0);
  EXPECT_EQ(decode_every_way("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", few).status, 431);
  // With the default limits, a trailer section over 8 KiB.
  EXPECT_EQ(decode_whole("0\r\nX: " + std::string(9000, 'v') + "\r\n\r\n").status, 431);
}

TEST(ChunkedDecoder, BodyOverTheLimitIs413) {
  Limits limits;
  limits.max_body_bytes = 10;
  EXPECT_EQ(decode_every_way("6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n", limits).status, 0);  // exactly 10
  const Decoded over = decode_every_way("6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n", limits);
  EXPECT_EQ(over.status, 413);
  EXPECT_EQ(over.body, "abcdef");  // refused at the size line, before any of the chunk is handed over
  EXPECT_EQ(decode_every_way("b\r\n", limits).status, 413);
  EXPECT_EQ(decode_every_way("B;ext\r\n", limits).status, 413);
  // The default limit, 1 MiB: refused at the size line, before the data arrives.
  EXPECT_EQ(decode_whole("100001\r\n").status, 413);
  EXPECT_EQ(decode_whole("100000\r\n").status, 0);
}

// Size lines longer than 15 hex digits are refused as 413 (15 digits already exceed any body limit, and 16
// could overflow the 64-bit size), even when their value is small: the decoder counts digits, not value.
TEST(ChunkedDecoder, SizesOfMoreThan15DigitsAre413) {
  Limits limits;
  limits.max_body_bytes = UINT64_MAX;
  EXPECT_EQ(decode_every_way("000000000000001\r\nx\r\n0\r\n\r\n", limits).status, 0);  // 15 digits
  EXPECT_EQ(decode_every_way("0000000000000001\r\nx\r\n0\r\n\r\n", limits).status, 413);  // 16
  EXPECT_EQ(decode_every_way("fffffffffffffffff\r\n", limits).status, 413);
  EXPECT_EQ(decode_whole(std::string(10000, 'f')).status, 413);  // refused before the line ends
  EXPECT_EQ(decode_whole("fffffffffffffff\r\n").status, 413);    // 15 digits, over the default 1 MiB
}

TEST(ChunkedDecoder, MalformedFramingIs400) {
  for (std::string_view input : {
           "\r\n"sv,                       // no size
           "g\r\nabc\r\n"sv,               // not hex
           "-3\r\nabc\r\n"sv,
           "0x3\r\nabc\r\n"sv,
           "3\nabc\r\n0\r\n\r\n"sv,        // bare LF after the size
           "3\r\rabc\r\n"sv,               // CR not followed by LF
           "3\r\nabcX\r\n0\r\n\r\n"sv,     // data longer than its size
           "3\r\nabcd\r\n0\r\n\r\n"sv,
           "3\r\nab\r\n0\r\n\r\n"sv,       // data shorter: the CRLF is read as data, then "0" is not CRLF
           "3\r\nabc\n0\r\n\r\n"sv,        // no CR after the data
           "3\r\nabc\rX0\r\n\r\n"sv,       // CR not followed by LF after the data
           "3\r\nabc0\r\n\r\n"sv,          // no CRLF after the data at all
           "0\r\n\rX"sv,                   // the last CRLF is broken
           "0\r\n\n"sv,
       }) {
    const Decoded decoded = decode_every_way(input);
    EXPECT_EQ(decoded.status, 400) << input;
    EXPECT_FALSE(decoded.done) << input;
  }
}

TEST(ChunkedDecoder, IncompleteBodiesAreNotDone) {
  const std::string input = "5\r\nhello\r\n0\r\nX: y\r\n\r\n";
  for (std::size_t size = 0; size < input.size(); ++size) {
    const Decoded decoded = decode_whole(std::string_view(input).substr(0, size));
    EXPECT_FALSE(decoded.done) << size;
    EXPECT_EQ(decoded.status, 0) << size;
    EXPECT_EQ(decoded.consumed, size) << size;  // everything that arrived is used, nothing waits
  }
}

TEST(ChunkedDecoder, HandsDataBackInPlaceAsItArrives) {
  Limits limits;
  ChunkedDecoder decoder(limits);
  const std::string first = "a\r\n01234";
  ChunkedDecoder::Step step = decoder.feed(first);
  EXPECT_EQ(step.data, "01234");
  EXPECT_EQ(step.data.data(), first.data() + 3);  // in place, not copied
  EXPECT_EQ(step.consumed, first.size());
  EXPECT_EQ(decoder.body_bytes(), 5u);
  step = decoder.feed("56789\r\n0\r\n\r\n");
  EXPECT_EQ(step.data, "56789");
  EXPECT_EQ(step.consumed, 5u);  // one step per run of data: the caller handles it before the rest
  EXPECT_FALSE(step.done);
  EXPECT_EQ(decoder.body_bytes(), 10u);
  step = decoder.feed("\r\n0\r\n\r\n");
  EXPECT_TRUE(step.done);
  EXPECT_TRUE(step.data.empty());
  EXPECT_EQ(step.consumed, 7u);
}

// ---------------------------------------------------------------------------------------------------------
// IMF-fixdate.

std::string format(std::int64_t seconds) {
  char out[29];
  format_http_date(seconds, out);
  return std::string(out, 29);
}

TEST(HttpDate, FormatsKnownTimes) {
  EXPECT_EQ(format(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(format(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(format(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
  EXPECT_EQ(format(1709164800), "Thu, 29 Feb 2024 00:00:00 GMT");
  EXPECT_EQ(format(1798761599), "Thu, 31 Dec 2026 23:59:59 GMT");
  EXPECT_EQ(format(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
  EXPECT_EQ(format(253402300799), "Fri, 31 Dec 9999 23:59:59 GMT");
}

TEST(HttpDate, ParsesKnownTimes) {
  std::int64_t seconds = 0;
  ASSERT_TRUE(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", seconds));
  EXPECT_EQ(seconds, 784111777);
  ASSERT_TRUE(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT", seconds));
  EXPECT_EQ(seconds, 0);
  ASSERT_TRUE(parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT", seconds));
  EXPECT_EQ(seconds, 951782400);
  ASSERT_TRUE(parse_http_date("Wed, 31 Dec 1969 23:59:59 GMT", seconds));
  EXPECT_EQ(seconds, -1);
}

TEST(HttpDate, RoundTripsOverFourCenturies) {
  // From 1900 to 2300 in steps that land on every time of day and every day of the week.
  std::int64_t parsed = 0;
  int count = 0;
  for (std::int64_t t = -2208988800; t < 10413792000; t += 86400 * 3 + 3607) {
    const std::string text = format(t);
    ASSERT_TRUE(parse_http_date(text, parsed)) << text;
    ASSERT_EQ(parsed, t) << text;
    ++count;
  }
  EXPECT_GT(count, 40000);
  // Every day across a leap-year boundary and a century that is not a leap year.
  for (std::int64_t day = -25620; day < -25500; ++day) {  // around 1900-03-01
    const std::string text = format(day * 86400 + 43200);
    ASSERT_TRUE(parse_http_date(text, parsed)) << text;
    ASSERT_EQ(parsed, day * 86400 + 43200) << text;
  }
}

TEST(HttpDate, RejectsMalformedDates) {
  std::int64_t seconds = 12345;
  for (std::string_view text : {
           ""sv,
           "Sunday, 06-Nov-94 08:49:37 GMT"sv,  // RFC 850
           "Sun Nov  6 08:49:37 1994"sv,        // asctime
           "Sun, 06 Nov 1994 08:49:37 UTC"sv,
           "Sun, 06 Nov 1994 08:49:37 GMT "sv,
           " Sun, 06 Nov 1994 08:49:37 GMT"sv,
           "Sun, 6 Nov 1994 08:49:37 GMT"sv,
           "Sun,  6 Nov 1994 08:49:37 GMT"sv,
           "Sun, 06 nov 1994 08:49:37 GMT"sv,
           "sun, 06 Nov 1994 08:49:37 GMT"sv,
           "Xyz, 06 Nov 1994 08:49:37 GMT"sv,
           "Sun, 06 Nox 1994 08:49:37 GMT"sv,
           "Sun; 06 Nov 1994 08:49:37 GMT"sv,
           "Sun, 06 Nov 1994 08-49-37 GMT"sv,
           "Sun, 00 Nov 1994 08:49:37 GMT"sv,
           "Sun, 32 Nov 1994 08:49:37 GMT"sv,
           "Sun, 31 Nov 1994 08:49:37 GMT"sv,  // November has 30 days
           "Sun, 30 Feb 2000 08:49:37 GMT"sv,
           "Sun, 29 Feb 1900 08:49:37 GMT"sv,  // 1900 is not a leap year
           "Sun, 29 Feb 1994 08:49:37 GMT"sv,
           "Sun, 06 Nov 1994 24:00:00 GMT"sv,
           "Sun, 06 Nov 1994 08:60:37 GMT"sv,
           "Sun, 06 Nov 1994 08:49:61 GMT"sv,
           "Sun, 06 Nov 19x4 08:49:37 GMT"sv,
           "Sun, 06 Nov 1994 +8:49:37 GMT"sv,
           "Sun, 06 Nov 1994 08:49:3  GMT"sv,
       }) {
    EXPECT_FALSE(parse_http_date(text, seconds)) << text;
  }
  EXPECT_EQ(seconds, 12345);  // untouched on failure
  EXPECT_TRUE(parse_http_date("Tue, 29 Feb 2000 08:49:37 GMT", seconds));
  EXPECT_TRUE(parse_http_date("Mon, 31 Jan 2000 00:00:00 GMT", seconds));
}

}  // namespace
}  // namespace surge::http
