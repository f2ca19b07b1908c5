// Responses: constructors, header rules and the reason phrases.
#include <weft/http/response.hpp>

#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <weft/http/error.hpp>
#include <weft/http/message_head.hpp>

#include "head_rules.hpp"

namespace weft::http {

std::string_view reason_phrase(std::uint16_t status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 205:
      return "Reset Content";
    case 206:
      return "Partial Content";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Content";
    case 425:
      return "Too Early";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 451:
      return "Unavailable For Legal Reasons";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

response response::text(std::string body, std::uint16_t status) {
  response r{status};
  r.known_type_ = "text/plain; charset=utf-8";
  r.body_ = std::move(body);
  return r;
}

response response::html(std::string body, std::uint16_t status) {
  response r{status};
  r.known_type_ = "text/html; charset=utf-8";
  r.body_ = std::move(body);
  return r;
}

response response::json(std::string body, std::uint16_t status) {
  response r{status};
  r.known_type_ = "application/json";
  r.body_ = std::move(body);
  return r;
}

task<response> response::file(std::string path, std::string content_type) {
  weft::file f;
  std::uint64_t size = 0;
  try {
    f = co_await weft::file::open(path);
    size = co_await f.size();
  } catch (const std::system_error& e) {
    const int code = e.code().value();
    if (code == ENOENT || code == ENOTDIR) throw error{404, "not found"};
    throw error{403, "forbidden"};
  }
  co_return file(std::move(f), 0, size, std::move(content_type));
}

response response::file(weft::file f, std::uint64_t offset, std::uint64_t length,
                        std::string content_type) {
  if (!f.is_open()) throw std::invalid_argument("weft::http::response::file: the file is not open");
  response r;
  r.content_type_ = std::move(content_type);
  r.body_ = file_body{std::move(f), offset, length};
  return r;
}

response response::stream(chunk_stream chunks, std::string content_type) {
  response r;
  r.content_type_ = std::move(content_type);
  r.body_ = std::move(chunks);
  return r;
}

response& response::set_status(std::uint16_t status) & {
  if (status < 200 || status > 599) {
    throw std::invalid_argument("weft::http::response: status " + std::to_string(status) +
                                " is not a final status (200-599)");
  }
  status_ = status;
  return *this;
}

void response::check_field(std::string_view name, std::string_view value) {
  if (!detail::is_token(name)) {
    throw std::invalid_argument("weft::http::response: '" + std::string{name} +
                                "' is not a valid header name");
  }
  if (iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
      iequals(name, "connection")) {
    throw std::invalid_argument("weft::http::response: " + std::string{name} +
                                " is set by the server (it frames the body; use "
                                "close_connection() to close)");
  }
  for (const char c : value) {
    if (!detail::is_field_char(static_cast<unsigned char>(c))) {
      throw std::invalid_argument("weft::http::response: the value of " + std::string{name} +
                                  " holds a control character (CR and LF would split the "
                                  "response)");
    }
  }
}

response& response::set_header(std::string_view name, std::string value) & {
  check_field(name, value);
  if (iequals(name, "content-type")) return set_content_type(std::move(value));
  std::erase_if(headers_, [&](const field& f) { return iequals(f.name, name); });
  headers_.push_back({std::string{name}, std::move(value)});
  return *this;
}

response& response::add_header(std::string_view name, std::string value) & {
  check_field(name, value);
  if (iequals(name, "content-type")) return set_content_type(std::move(value));
  headers_.push_back({std::string{name}, std::move(value)});
  return *this;
}

std::optional<std::string_view> response::header(std::string_view name) const noexcept {
  if (iequals(name, "content-type")) {
    if (content_type().empty()) return std::nullopt;
    return content_type();
  }
  for (const auto& f : headers_) {
    if (iequals(f.name, name)) return std::string_view{f.value};
  }
  return std::nullopt;
}

response& response::set_content_type(std::string type) & {
  check_field("Content-Type", type);
  known_type_ = nullptr;
  content_type_ = std::move(type);
  return *this;
}

response& response::set_body(std::string body) & {
  body_ = std::move(body);
  return *this;
}

std::string_view response::body() const noexcept {
  if (const auto* s = std::get_if<std::string>(&body_)) return *s;
  return {};
}

}  // namespace weft::http
