#include "daemon/protocol.h"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
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

// Builds the document as RapidJSON's own parser does, but turns each number's
// text into a value with the C library (strtoll/strtoull, and strtod, which
// rounds correctly): RapidJSON 1.1's full-precision strtod has undefined
// behaviour on texts such as 0e67 (fixed upstream after 1.1). Integers keep
// RapidJSON's types; a number past the double range is refused as it would be.
struct ExactNumbers {
  rapidjson::Document* d;
  bool too_big = false;

  bool Null() { return d->Null(); }
  bool Bool(bool b) { return d->Bool(b); }
  bool Int(int i) { return d->Int(i); }
  bool Uint(unsigned u) { return d->Uint(u); }
  bool Int64(int64_t i) { return d->Int64(i); }
  bool Uint64(uint64_t u) { return d->Uint64(u); }
  bool Double(double v) { return d->Double(v); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return d->String(s, n, copy); }
  bool StartObject() { return d->StartObject(); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return d->Key(s, n, copy); }
  bool EndObject(rapidjson::SizeType members) { return d->EndObject(members); }
  bool StartArray() { return d->StartArray(); }
  bool EndArray(rapidjson::SizeType elements) { return d->EndArray(elements); }

  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    std::string text(s, n);  // NUL-terminated for the C library
    if (text.find_first_of(".eE") == std::string::npos) {
      errno = 0;
      if (text[0] == '-') {
        long long v = std::strtoll(text.c_str(), nullptr, 10);
        if (errno == 0) {
          return v >= std::numeric_limits<int32_t>::min() ? d->Int(static_cast<int>(v))
                                                          : d->Int64(v);
        }
      } else {
        unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
        if (errno == 0) {
          return v <= std::numeric_limits<uint32_t>::max() ? d->Uint(static_cast<unsigned>(v))
                                                           : d->Uint64(v);
        }
      }
      // Past 64 bits: a double, as RapidJSON makes it.
    }
    double v = std::strtod(text.c_str(), nullptr);
    if (std::isinf(v)) {
      too_big = true;
      return false;
    }
    return d->Double(v);
  }
};

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
                              rapidjson::kParseIterativeFlag |
                              rapidjson::kParseNumbersAsStringsFlag;
  rapidjson::Reader reader;
  ExactNumbers numbers{doc};
  auto parse = [&](rapidjson::Document& d) {
    numbers.d = &d;
    rapidjson::MemoryStream ms(line.data(), line.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(ms);
    return !reader.Parse<kFlags>(in, numbers).IsError();
  };
  doc->Populate(parse);
  if (reader.HasParseError()) {
    rapidjson::ParseErrorCode code =
        numbers.too_big ? rapidjson::kParseErrorNumberTooBig : reader.GetParseErrorCode();
    *error = std::string("invalid JSON at byte ") + std::to_string(reader.GetErrorOffset()) + ": " +
             rapidjson::GetParseError_En(code);
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
