// Socket protocol v1: request checks and reply formatting shared by the
// server and outboxctl. Requests and replies are one JSON object per line.
// Thread rules: pure functions.
#ifndef OUTBOXD_DAEMON_PROTOCOL_H_
#define OUTBOXD_DAEMON_PROTOCOL_H_

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <string_view>

namespace outboxd {

// The error codes of DESIGN.md.
enum class ErrorCode {
  kBadRequest,
  kUnknownOp,
  kUnknownProvider,
  kInvalidEvent,
  kQueueFull,
  kShuttingDown,
  kNotFound,
  kInternal,
};
const char* ErrorCodeName(ErrorCode code);

inline constexpr int kMaxJsonDepth = 64;

// Parses one request line into `doc`. Rejects (returning false with a
// message in `error`) what is not a single JSON object, invalid UTF-8, NUL
// bytes, nesting deeper than kMaxJsonDepth and duplicated object keys.
bool ParseRequestLine(std::string_view line, rapidjson::Document* doc, std::string* error);

// {"ok":false,"error":{"code":"…","message":"…"}}
std::string ErrorReply(ErrorCode code, std::string_view message);

// A reply under construction: {"ok":true, ...}. Use writer() to add members.
class ReplyWriter {
 public:
  ReplyWriter();
  rapidjson::Writer<rapidjson::StringBuffer>& w() { return writer_; }
  // Closes the object and returns the line (without newline).
  std::string Finish();

 private:
  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

}  // namespace outboxd

#endif  // OUTBOXD_DAEMON_PROTOCOL_H_
