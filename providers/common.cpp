#include "providers/common.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <random>

namespace outboxd::providers {

std::string Setting(const ProviderSettings& s, const char* key) {
  auto it = s.values.find(key);
  return it == s.values.end() ? std::string() : it->second;
}

bool ReadCommon(const ProviderSettings& s, std::string_view default_base, CommonSettings* out,
                std::string* error) {
  out->base_url = Setting(s, "base_url");
  if (out->base_url.empty()) out->base_url = std::string(default_base);
  while (!out->base_url.empty() && out->base_url.back() == '/') out->base_url.pop_back();
  if (!out->base_url.empty() && out->base_url.rfind("https://", 0) != 0 &&
      out->base_url.rfind("http://", 0) != 0) {
    *error = "base_url: must start with https:// or http://";
    return false;
  }
  std::string t = Setting(s, "timeout");
  if (!t.empty()) {
    char* end = nullptr;
    out->timeout_s = std::strtod(t.c_str(), &end);
    if (*end != '\0' || out->timeout_s <= 0) {
      *error = "timeout: must be a positive duration";
      return false;
    }
  }
  out->ca_file = Setting(s, "ca_file");
  if (!out->ca_file.empty() && access(out->ca_file.c_str(), R_OK) != 0) {
    *error = fmt::format("ca_file: cannot read {}", out->ca_file);
    return false;
  }
  return true;
}

std::string CompactJson(const rapidjson::Value& value) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  value.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

bool OnlyKnownFields(const rapidjson::Value& obj, std::initializer_list<std::string_view> allowed,
                     std::string* error) {
  for (const auto& m : obj.GetObject()) {
    std::string_view name(m.name.GetString(), m.name.GetStringLength());
    bool ok = false;
    for (auto a : allowed) ok |= a == name;
    if (!ok) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      *error = fmt::format("{}: unknown field (allowed: {})", name, list);
      return false;
    }
  }
  return true;
}

bool RequireString(const rapidjson::Value& obj, const char* name, size_t max, std::string* out,
                   std::string* error) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsString() || it->value.GetStringLength() == 0) {
    *error = fmt::format("{}: must be a non-empty string", name);
    return false;
  }
  if (it->value.GetStringLength() > max) {
    *error = fmt::format("{}: must be at most {} bytes", name, max);
    return false;
  }
  out->assign(it->value.GetString(), it->value.GetStringLength());
  return true;
}

bool OptionalString(const rapidjson::Value& obj, const char* name, size_t max, std::string* out,
                    bool* present, std::string* error) {
  *present = false;
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return true;
  if (!it->value.IsString()) {
    *error = fmt::format("{}: must be a string", name);
    return false;
  }
  if (it->value.GetStringLength() > max) {
    *error = fmt::format("{}: must be at most {} bytes", name, max);
    return false;
  }
  out->assign(it->value.GetString(), it->value.GetStringLength());
  *present = true;
  return true;
}

bool IsGuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

bool IsAllZeroGuid(std::string_view s) {
  for (char c : s) {
    if (c != '0' && c != '-') return false;
  }
  return true;
}

bool IsToken(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

std::string Base64(std::string_view data) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(data[i]) << 16) | (static_cast<uint8_t>(data[i + 1]) << 8) |
                 static_cast<uint8_t>(data[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < data.size()) {
    uint32_t v = static_cast<uint8_t>(data[i]) << 16;
    if (i + 1 < data.size()) v |= static_cast<uint8_t>(data[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < data.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

bool Base64UrlDecode(std::string_view in, std::string* out) {
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-' || c == '+')
      v = 62;
    else if (c == '_' || c == '/')
      v = 63;
    else if (c == '=')
      break;
    else
      return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

std::string PercentEncode(std::string_view segment) {
  std::string out;
  for (unsigned char c : segment) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string NewUuid() {
  unsigned char b[16];
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  bool ok = fd >= 0 && read(fd, b, sizeof(b)) == static_cast<ssize_t>(sizeof(b));
  if (fd >= 0) close(fd);
  if (!ok) {
    std::random_device rd;
    for (auto& x : b) x = static_cast<unsigned char>(rd());
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  return fmt::format(
      "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-"
      "{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
      b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
      b[15]);
}

std::string Excerpt(std::string_view body, size_t max) {
  std::string out;
  for (unsigned char c : body.substr(0, max)) {
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : ' ');
  }
  if (body.size() > max) out += "...";
  return out;
}

std::string StatusReason(const HttpResponse& r, const char* message_field) {
  rapidjson::Document d;
  d.Parse(r.body.data(), r.body.size());
  if (!d.HasParseError() && d.IsObject()) {
    auto it = d.FindMember(message_field);
    if (it != d.MemberEnd() && it->value.IsString()) {
      return fmt::format("HTTP {}: {}", r.status, Excerpt(it->value.GetString()));
    }
    if (it != d.MemberEnd() && it->value.IsArray() && it->value.Size() > 0 &&
        it->value[0].IsString()) {
      return fmt::format("HTTP {}: {}", r.status, Excerpt(it->value[0].GetString()));
    }
  }
  if (r.body.empty()) return fmt::format("HTTP {}", r.status);
  return fmt::format("HTTP {}: {}", r.status, Excerpt(r.body));
}

bool ClassifyCommon(const HttpResponse& r, double now, Verdict* v) {
  v->status = r.status;
  if (r.error != TransportError::kNone) {
    v->kind = VerdictKind::kOffline;
    v->reason = fmt::format("{}: {}", TransportErrorName(r.error), r.error_message);
    return true;
  }
  RateHints hints = ParseRateHints(r, now);
  // Exhausted quota pauses the lane whatever the status; Retry-After does
  // for 429 and 503 (the server asks everyone to wait), not for per-request
  // answers such as Novu's 409.
  if (hints.remaining && *hints.remaining <= 0 && hints.reset_at) {
    v->lane_pause_until = *hints.reset_at;
  }
  if ((r.status == 429 || r.status == 503) && hints.retry_after_at) {
    v->lane_pause_until = std::max(v->lane_pause_until.value_or(0), *hints.retry_after_at);
  }
  if (r.status == 429) {
    v->kind = VerdictKind::kRateLimited;
    if (!v->lane_pause_until) v->lane_pause_until = now + 1;
    v->reason = "HTTP 429: rate limited";
    return true;
  }
  if (r.status == 408 || r.status == 425 || r.status >= 500) {
    v->kind = VerdictKind::kRetry;
    v->reason = StatusReason(r);
    if (hints.retry_after_at) v->retry_at = *hints.retry_after_at;
    return true;
  }
  return false;
}

}  // namespace outboxd::providers
