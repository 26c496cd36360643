#include "examples/http/request_parser.h"

#include <cstring>

namespace surge::http {
namespace {

// RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" /
// "|" / "~" / DIGIT / ALPHA.
constexpr std::array<bool, 256> make_token_table() {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}
constexpr std::array<bool, 256> kToken = make_token_table();

bool is_token_char(char c) noexcept { return kToken[static_cast<unsigned char>(c)]; }
// field-vchar, SP and HTAB (RFC 9110 5.5): everything but the controls and DEL; obs-text (0x80-0xFF) too.
bool is_value_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}
bool is_target_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f;
}
char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

ParseResult error(int status, std::string_view reason) noexcept {
  return ParseResult{ParseState::kError, 0, status, reason};
}

Method method_of(std::string_view text) noexcept {
  switch (text.size()) {
    case 3:
      if (text == "GET") return Method::kGet;
      if (text == "PUT") return Method::kPut;
      break;
    case 4:
      if (text == "HEAD") return Method::kHead;
      if (text == "POST") return Method::kPost;
      break;
    case 5:
      if (text == "PATCH") return Method::kPatch;
      break;
    case 6:
      if (text == "DELETE") return Method::kDelete;
      break;
    case 7:
      if (text == "OPTIONS") return Method::kOptions;
      break;
  }
  return Method::kOther;
}

// Splits the target into path and query. False if it is none of the forms a server takes.
bool split_target(RequestHead& head) noexcept {
  std::string_view target = head.target;
  if (target == "*") {
    head.path = target;
    return head.method == Method::kOptions;
  }
  if (target.front() != '/') {
    // absolute-form: "http://authority/path?query" (RFC 9112 3.2.2); the authority is not checked here.
    std::size_t scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos) return false;
    const std::string_view scheme = target.substr(0, scheme_end);
    if (!equals_ignore_case(scheme, "http") && !equals_ignore_case(scheme, "https")) return false;
    std::string_view rest = target.substr(scheme_end + 3);
    const std::size_t path_start = rest.find_first_of("/?");
    if (path_start == 0 || rest.empty()) return false;  // no authority ("http:///x", "http://")
    if (path_start == std::string_view::npos) {
      head.path = "/";
      return true;
    }
    target = rest.substr(path_start);
    if (target.front() == '?') {
      head.path = "/";
      head.query = target.substr(1);
      return true;
    }
  }
  const std::size_t question = target.find('?');
  head.path = target.substr(0, question);
  if (question != std::string_view::npos) head.query = target.substr(question + 1);
  return true;
}

// Does the comma-separated list `value` hold `token` (case-insensitive)?
bool list_contains(std::string_view value, std::string_view token) noexcept {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    if (equals_ignore_case(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// The request line: method SP request-target SP HTTP-version.
ParseResult parse_request_line(std::string_view line, RequestHead& head) noexcept {
  std::size_t i = 0;
  while (i < line.size() && is_token_char(line[i])) ++i;
  if (i == 0 || i >= line.size() || line[i] != ' ') return error(400, "malformed request line");
  if (i > 32) return error(400, "method too long");
  head.method_text = line.substr(0, i);
  head.method = method_of(head.method_text);
  const std::size_t target_start = ++i;
  while (i < line.size() && is_target_char(line[i])) ++i;
  if (i == target_start || i >= line.size() || line[i] != ' ') return error(400, "malformed request target");
  head.target = line.substr(target_start, i - target_start);
  const std::string_view version = line.substr(i + 1);
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return error(400, "malformed HTTP version");
  }
  if (version[5] != '1' || version[7] > '1') return error(505, "only HTTP/1.0 and HTTP/1.1 are served");
  head.version_minor = version[7] - '0';
  if (!split_target(head)) return error(400, "malformed request target");
  return ParseResult{ParseState::kComplete};
}

}  // namespace

bool equals_ignore_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view RequestHead::header(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < header_count; ++i) {
    if (equals_ignore_case(headers[i].name, name)) return headers[i].value;
  }
  return {};
}

ParseResult HeadParser::parse(std::string_view input, const Limits& limits, RequestHead& head) noexcept {
  // Empty lines before the request line are skipped; they count towards the head's size. skipped_ keeps
  // how far they reach so that a client sending them a byte at a time does not have them skipped again on
  // every call.
  std::size_t start = skipped_;
  while (start + 1 < input.size() && input[start] == '\r' && input[start + 1] == '\n') start += 2;
  skipped_ = start;
  if (start >= limits.max_head_bytes) return error(431, "request header fields too large");
  if (start < input.size() && input[start] == '\n') return error(400, "bare LF");
  if (start + 1 >= input.size()) return ParseResult{};  // nothing but empty lines (or a lone CR) so far

  // Find the head's end, "\r\n\r\n", looking at each LF once: a bare LF anywhere is refused right away,
  // so a client that ends its lines in LF alone gets its 400 now rather than a 408 later. Only the first
  // max_head_bytes are looked at: what lies past them cannot belong to a head we accept, and reading it
  // would make the answer depend on how the bytes arrived (a bare LF past the limit would be 400 in one
  // read and 431 a byte at a time).
  const std::size_t window = input.size() < limits.max_head_bytes ? input.size() : limits.max_head_bytes;
  std::size_t end = 0;
  std::size_t from = scanned_ > start ? scanned_ : start;
  const char* data = input.data();
  while (from < window) {
    const void* found = std::memchr(data + from, '\n', window - from);
    if (found == nullptr) break;
    const std::size_t lf = static_cast<std::size_t>(static_cast<const char*>(found) - data);
    if (data[lf - 1] != '\r') return error(400, "bare LF");
    if (lf >= start + 3 && data[lf - 2] == '\n' && data[lf - 3] == '\r') {
      end = lf + 1;
      break;
    }
    from = lf + 1;
  }
  if (end == 0) {
    scanned_ = window;
    if (input.size() >= limits.max_head_bytes) return error(431, "request header fields too large");
    return ParseResult{};
  }

  // Field by field rather than `head = RequestHead{}`, which would clear 4 KiB of header slots per request.
  head.method = Method::kOther;
  head.method_text = head.target = head.path = head.query = head.host = head.if_modified_since = {};
  head.version_minor = 1;
  head.body = BodyKind::kNone;
  head.content_length = 0;
  head.keep_alive = true;
  head.expect_continue = false;
  head.header_count = 0;
  const std::string_view block = input.substr(start, end - 2 - start);  // every line with its CRLF
  std::size_t line_end = block.find("\r\n");
  ParseResult line = parse_request_line(block.substr(0, line_end), head);
  if (line.state == ParseState::kError) return line;

  const std::size_t max_headers = limits.max_headers < kMaxHeaderFields ? limits.max_headers : kMaxHeaderFields;
  bool has_length = false;
  bool length_too_large = false;
  int transfer_encodings = 0;
  bool chunked = false;
  bool host_seen = false;
  bool connection_close = false;
  bool connection_keep_alive = false;
  std::size_t position = line_end + 2;
  while (position < block.size()) {
    line_end = block.find("\r\n", position);
    const std::string_view field = block.substr(position, line_end - position);
    position = line_end + 2;
    if (field.front() == ' ' || field.front() == '\t') return error(400, "obsolete line folding");
    std::size_t colon = 0;
    while (colon < field.size() && is_token_char(field[colon])) ++colon;
    if (colon == 0 || colon >= field.size() || field[colon] != ':') return error(400, "malformed header field");
    for (std::size_t i = colon + 1; i < field.size(); ++i) {
      if (!is_value_char(field[i])) return error(400, "control character in a header value");
    }
    if (head.header_count == max_headers) return error(431, "too many header fields");
    const std::string_view name = field.substr(0, colon);
    const std::string_view value = trim(field.substr(colon + 1));
    head.headers[head.header_count++] = HeaderField{name, value};

    switch (name.size()) {
      case 4:
        if (equals_ignore_case(name, "host")) {
          if (host_seen) return error(400, "more than one Host");
          host_seen = true;
          head.host = value;
        }
        break;
      case 6:
        if (equals_ignore_case(name, "expect") && equals_ignore_case(value, "100-continue")) {
          head.expect_continue = true;
        }
        break;
      case 10:
        if (equals_ignore_case(name, "connection")) {
          connection_close |= list_contains(value, "close");
          connection_keep_alive |= list_contains(value, "keep-alive");
        }
        break;
      case 14:
        if (equals_ignore_case(name, "content-length")) {
          if (value.empty()) return error(400, "empty Content-Length");
          std::uint64_t length = 0;
          bool too_large = false;
          for (char c : value) {
            if (c < '0' || c > '9') return error(400, "malformed Content-Length");
            if (length > (UINT64_MAX - 9) / 10) {
              too_large = true;  // keep checking the digits: "99...9x" is still 400
            } else {
              length = length * 10 + static_cast<std::uint64_t>(c - '0');
            }
          }
          if (has_length && (too_large != length_too_large || length != head.content_length)) {
            return error(400, "conflicting Content-Length");
          }
          has_length = true;
          length_too_large = too_large;
          head.content_length = length;
        }
        break;
      case 17:
        if (equals_ignore_case(name, "transfer-encoding")) {
          ++transfer_encodings;
          chunked = equals_ignore_case(value, "chunked");
        } else if (equals_ignore_case(name, "if-modified-since")) {
          head.if_modified_since = value;
        }
        break;
    }
  }

  if (head.version_minor == 1 && !host_seen) return error(400, "missing Host");
  if (transfer_encodings > 0) {
    if (has_length) return error(400, "both Content-Length and Transfer-Encoding");
    if (head.version_minor == 0) return error(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (transfer_encodings > 1 || !chunked) return error(501, "only the chunked transfer coding is supported");
    head.body = BodyKind::kChunked;
  } else if (has_length) {
    if (length_too_large || head.content_length > limits.max_body_bytes) return error(413, "request body too large");
    head.body = head.content_length > 0 ? BodyKind::kLength : BodyKind::kNone;
  }
  head.keep_alive = head.version_minor == 1 ? !connection_close : (connection_keep_alive && !connection_close);
  return ParseResult{ParseState::kComplete, end};
}

ChunkedDecoder::Step ChunkedDecoder::feed(std::string_view input) noexcept {
  auto fail = [](std::size_t at, int status, std::string_view reason) {
    Step step;
    step.consumed = at;
    step.status = status;
    step.reason = reason;
    return step;
  };
  std::size_t i = 0;
  while (i < input.size()) {
    const char c = input[i];
    switch (state_) {
      case State::kSize: {
        int digit = -1;
        if (c >= '0' && c <= '9') digit = c - '0';
        else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
        if (digit >= 0) {
          // 15 hex digits already exceed any body limit; more would overflow.
          if (++size_digits_ > 15) return fail(i, 413, "chunk too large");
          chunk_left_ = chunk_left_ * 16 + static_cast<std::uint64_t>(digit);
          ++i;
          break;
        }
        if (size_digits_ == 0) return fail(i, 400, "malformed chunk size");
        if (chunk_left_ > limits_->max_body_bytes - total_) return fail(i, 413, "request body too large");
        if (c == ';' || c == ' ' || c == '\t') {
          state_ = State::kExtension;
          line_bytes_ = 0;
        } else if (c == '\r') {
          state_ = State::kSizeLf;
        } else {
          return fail(i, 400, "malformed chunk size");
        }
        ++i;
        break;
      }
      case State::kExtension:
        if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (!is_value_char(c)) {
          return fail(i, 400, "control character in a chunk extension");
        } else if (++line_bytes_ > 4096) {
          return fail(i, 400, "chunk extension too long");
        }
        ++i;
        break;
      case State::kSizeLf:
        if (c != '\n') return fail(i, 400, "malformed chunk size line");
        ++i;
        size_digits_ = 0;
        if (chunk_left_ == 0) {
          state_ = State::kTrailerStart;
          line_bytes_ = 0;
        } else {
          state_ = State::kData;
        }
        break;
      case State::kData: {
        const std::size_t available = input.size() - i;
        const std::size_t take = chunk_left_ < available ? static_cast<std::size_t>(chunk_left_) : available;
        Step step;
        step.data = input.substr(i, take);
        step.consumed = i + take;
        chunk_left_ -= take;
        total_ += take;
        if (chunk_left_ == 0) state_ = State::kDataCr;
        return step;
      }
      case State::kDataCr:
        if (c != '\r') return fail(i, 400, "chunk data longer than its size");
        state_ = State::kDataLf;
        ++i;
        break;
      case State::kDataLf:
        if (c != '\n') return fail(i, 400, "malformed chunk end");
        state_ = State::kSize;
        ++i;
        break;
      case State::kTrailerStart:
        if (c == '\r') {
          state_ = State::kEndLf;
        } else {
          if (!is_token_char(c)) return fail(i, 400, "malformed trailer field");
          if (++trailer_fields_ > limits_->max_headers) return fail(i, 431, "too many trailer fields");
          state_ = State::kTrailer;
          trailer_has_colon_ = false;
        }
        ++line_bytes_;
        ++i;
        break;
      case State::kTrailer:
        if (c == '\r') {
          if (!trailer_has_colon_) return fail(i, 400, "malformed trailer field");
          state_ = State::kTrailerLf;
        } else if (!is_value_char(c)) {
          return fail(i, 400, "control character in a trailer field");
        } else if (c == ':') {
          trailer_has_colon_ = true;
        } else if (!trailer_has_colon_ && !is_token_char(c)) {
          return fail(i, 400, "malformed trailer field");
        }
        if (++line_bytes_ > limits_->max_head_bytes) return fail(i, 431, "trailer fields too large");
        ++i;
        break;
      case State::kTrailerLf:
        if (c != '\n') return fail(i, 400, "bare CR in the trailer");
        state_ = State::kTrailerStart;
        ++line_bytes_;
        ++i;
        break;
      case State::kEndLf: {
        if (c != '\n') return fail(i, 400, "malformed end of chunked body");
        state_ = State::kDone;
        Step step;
        step.consumed = i + 1;
        step.done = true;
        return step;
      }
      case State::kDone: {
        Step step;
        step.done = true;
        return step;
      }
    }
  }
  Step step;
  step.consumed = i;
  step.done = state_ == State::kDone;
  return step;
}

namespace {

constexpr std::string_view kDays[7] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};  // from 1970-01-01
constexpr std::string_view kMonths[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian, days since 1970-01-01).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

void put2(char* out, unsigned value) noexcept {
  out[0] = static_cast<char>('0' + value / 10 % 10);
  out[1] = static_cast<char>('0' + value % 10);
}

bool digits(std::string_view text, unsigned& value) noexcept {
  value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return true;
}

}  // namespace

void format_http_date(std::int64_t unix_seconds, char out[29]) noexcept {
  std::int64_t days = unix_seconds / 86400;
  std::int64_t rest = unix_seconds % 86400;
  if (rest < 0) {
    rest += 86400;
    --days;
  }
  std::int64_t year;
  unsigned month, day;
  civil_from_days(days, year, month, day);
  const std::string_view weekday = kDays[((days % 7) + 7) % 7];
  std::memcpy(out, weekday.data(), 3);
  out[3] = ',';
  out[4] = ' ';
  put2(out + 5, day);
  out[7] = ' ';
  std::memcpy(out + 8, kMonths[month - 1].data(), 3);
  out[11] = ' ';
  const unsigned y = static_cast<unsigned>(year < 0 ? 0 : (year > 9999 ? 9999 : year));
  put2(out + 12, y / 100);
  put2(out + 14, y % 100);
  out[16] = ' ';
  put2(out + 17, static_cast<unsigned>(rest / 3600));
  out[19] = ':';
  put2(out + 20, static_cast<unsigned>(rest / 60 % 60));
  out[22] = ':';
  put2(out + 23, static_cast<unsigned>(rest % 60));
  std::memcpy(out + 25, " GMT", 4);
}

bool parse_http_date(std::string_view text, std::int64_t& unix_seconds) noexcept {
  // "Sun, 06 Nov 1994 08:49:37 GMT"
  if (text.size() != 29 || text[3] != ',' || text[4] != ' ' || text[7] != ' ' || text[11] != ' ' ||
      text[16] != ' ' || text[19] != ':' || text[22] != ':' || text.substr(25) != " GMT") {
    return false;
  }
  bool weekday_known = false;
  for (std::string_view name : kDays) weekday_known |= text.substr(0, 3) == name;
  if (!weekday_known) return false;
  unsigned day, year, hour, minute, second;
  if (!digits(text.substr(5, 2), day) || !digits(text.substr(12, 4), year) || !digits(text.substr(17, 2), hour) ||
      !digits(text.substr(20, 2), minute) || !digits(text.substr(23, 2), second)) {
    return false;
  }
  unsigned month = 0;
  for (unsigned i = 0; i < 12; ++i) {
    if (text.substr(8, 3) == kMonths[i]) month = i + 1;
  }
  if (month == 0 || day == 0 || hour > 23 || minute > 59 || second > 60) return false;
  // A day the month does not have ("31 Nov", "29 Feb 1900") is malformed, not the next month's first.
  constexpr unsigned kDaysIn[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
  if (day > kDaysIn[month - 1] || (month == 2 && day == 29 && !leap)) return false;
  unix_seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
  return true;
}

}  // namespace surge::http
