#include "daemon/protocol.h"

#include <rapidjson/error/en.h>

#include <set>
#include <string_view>
#include <vector>

namespace outboxd {
namespace {

// Depth of [ and { outside strings; stops early once past the limit, so a
// 10,000-deep line costs a scan, never a deep parse.
bool DepthWithin(std::string_view line, int limit) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : line) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '{' || c == '[') {
      if (++depth > limit) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

// Finds a duplicated key anywhere in `value`; depth is bounded by the scan.
bool FindDuplicateKey(const rapidjson::Value& value, std::string* key) {
  if (value.IsObject()) {
    std::set<std::string_view> seen;
    for (const auto& m : value.GetObject()) {
      std::string_view name(m.name.GetString(), m.name.GetStringLength());
      if (!seen.insert(name).second) {
        *key = std::string(name);
        return true;
      }
      if (FindDuplicateKey(m.value, key)) return true;
    }
  } else if (value.IsArray()) {
    for (const auto& v : value.GetArray()) {
      if (FindDuplicateKey(v, key)) return true;
    }
  }
  return false;
}

}  // namespace

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kBadRequest:
      return "bad_request";
    case ErrorCode::kUnknownOp:
      return "unknown_op";
    case ErrorCode::kUnknownProvider:
      return "unknown_provider";
    case ErrorCode::kInvalidEvent:
      return "invalid_event";
    case ErrorCode::kQueueFull:
      return "queue_full";
    case ErrorCode::kShuttingDown:
      return "shutting_down";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

bool ParseRequestLine(std::string_view line, rapidjson::Document* doc, std::string* error) {
  if (line.find('\0') != std::string_view::npos) {
    *error = "request contains a NUL byte";
    return false;
  }
  if (!DepthWithin(line, kMaxJsonDepth)) {
    *error = "request nests deeper than " + std::to_string(kMaxJsonDepth) + " levels";
    return false;
  }
  constexpr unsigned kFlags = rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseIterativeFlag | rapidjson::kParseFullPrecisionFlag;
  doc->Parse<kFlags>(line.data(), line.size());
  if (doc->HasParseError()) {
    *error = std::string("invalid JSON at byte ") + std::to_string(doc->GetErrorOffset()) + ": " +
             rapidjson::GetParseError_En(doc->GetParseError());
    return false;
  }
  if (!doc->IsObject()) {
    *error = "request must be a JSON object";
    return false;
  }
  std::string key;
  if (FindDuplicateKey(*doc, &key)) {
    *error = "duplicated key \"" + key + "\"";
    return false;
  }
  return true;
}

std::string ErrorReply(ErrorCode code, std::string_view message) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("ok");
  w.Bool(false);
  w.Key("error");
  w.StartObject();
  w.Key("code");
  w.String(ErrorCodeName(code));
  w.Key("message");
  w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

ReplyWriter::ReplyWriter() : writer_(buffer_) {
  writer_.StartObject();
  writer_.Key("ok");
  writer_.Bool(true);
}

std::string ReplyWriter::Finish() {
  writer_.EndObject();
  return std::string(buffer_.GetString(), buffer_.GetSize());
}

}  // namespace outboxd
