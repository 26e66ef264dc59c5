// Helpers shared by the provider types: settings, JSON, identifiers,
// encodings and the answer classification every API shares. Internal to
// providers/.
// Thread rules: pure functions.
#ifndef OUTBOXD_PROVIDERS_COMMON_H_
#define OUTBOXD_PROVIDERS_COMMON_H_

#include <rapidjson/document.h>

#include <initializer_list>
#include <string>
#include <string_view>

#include "providers/http.h"
#include "providers/provider.h"

namespace outboxd::providers {

// Settings every type has. `default_base` may be empty (then base_url or a
// type-specific key must give it).
struct CommonSettings {
  std::string base_url;  // without trailing slash
  double timeout_s = 30;
  std::string ca_file;
};
bool ReadCommon(const ProviderSettings& s, std::string_view default_base, CommonSettings* out,
                std::string* error);
// The value of `key`, or "" when absent.
std::string Setting(const ProviderSettings& s, const char* key);

// Compact JSON of a value, as bytes to send.
std::string CompactJson(const rapidjson::Value& value);

// Fails naming the first member of `obj` not in `allowed`.
bool OnlyKnownFields(const rapidjson::Value& obj, std::initializer_list<std::string_view> allowed,
                     std::string* error);
// A required non-empty string member; `max` bytes at most.
bool RequireString(const rapidjson::Value& obj, const char* name, size_t max, std::string* out,
                   std::string* error);
// An optional string member: false only when present and not a string.
bool OptionalString(const rapidjson::Value& obj, const char* name, size_t max, std::string* out,
                    bool* present, std::string* error);

// 8-4-4-4-12 hex digits.
bool IsGuid(std::string_view s);
bool IsAllZeroGuid(std::string_view s);
bool IsToken(std::string_view s, size_t max);  // [A-Za-z0-9_.-]{1,max}

std::string Base64(std::string_view data);
bool Base64UrlDecode(std::string_view in, std::string* out);
// Percent-encodes one path segment (RFC 3986 unreserved kept).
std::string PercentEncode(std::string_view segment);
// A random UUIDv4 from the OS.
std::string NewUuid();

// Classification every API shares: transport failure -> kOffline; 429 ->
// kRateLimited until the announced reset; 408/425/5xx -> kRetry; the
// rate-limit headers of any answer set lane_pause_until. Returns false when
// the status is for the provider to decide (2xx and other 4xx).
bool ClassifyCommon(const HttpResponse& r, double now, Verdict* v);
// A short, printable excerpt of an answer body for reasons.
std::string Excerpt(std::string_view body, size_t max = 160);
// "HTTP 400: <message from the body>".
std::string StatusReason(const HttpResponse& r, const char* message_field = "message");

}  // namespace outboxd::providers

#endif  // OUTBOXD_PROVIDERS_COMMON_H_
