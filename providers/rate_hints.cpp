// Rate-limit hints from answer headers: Retry-After (RFC 9110: seconds or an
// HTTP-date), x-ratelimit-* (MoEngage: reset is UTC epoch seconds) and
// RateLimit-* (IETF draft, Novu: reset is seconds from now).
#include <strings.h>
#include <time.h>

#include <cstdlib>
#include <string>

#include "providers/provider.h"

namespace outboxd::providers {
namespace {

std::optional<double> Number(const std::string* v) {
  if (!v || v->empty()) return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(v->c_str(), &end);
  while (end && (*end == ' ' || *end == '\t')) ++end;
  if (!end || *end != '\0' || d < 0) return std::nullopt;
  return d;
}

std::optional<double> HttpDate(const std::string& v) {
  static const char* kFormats[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                   "%a %b %d %H:%M:%S %Y"};
  for (const char* f : kFormats) {
    struct tm tm = {};
    const char* end = strptime(v.c_str(), f, &tm);
    if (end && *end == '\0') return static_cast<double>(timegm(&tm));
  }
  return std::nullopt;
}

}  // namespace

std::optional<double> RateHints::PauseUntil() const {
  std::optional<double> until;
  if (remaining && *remaining <= 0 && reset_at) until = reset_at;
  if (retry_after_at && (!until || *retry_after_at > *until)) until = retry_after_at;
  return until;
}

RateHints ParseRateHints(const HttpResponse& r, double now) {
  RateHints h;
  if (const std::string* ra = r.FindHeader("Retry-After")) {
    if (auto secs = Number(ra))
      h.retry_after_at = now + *secs;
    else if (auto at = HttpDate(*ra))
      h.retry_after_at = *at;
  }
  if (auto v = Number(r.FindHeader("x-ratelimit-limit"))) h.limit = v;
  if (auto v = Number(r.FindHeader("x-ratelimit-remaining"))) h.remaining = v;
  if (auto v = Number(r.FindHeader("x-ratelimit-reset"))) {
    // An epoch; a small number can only be seconds from now.
    h.reset_at = *v > 1e9 ? *v : now + *v;
  }
  if (auto v = Number(r.FindHeader("RateLimit-Limit"))) h.limit = v;
  if (auto v = Number(r.FindHeader("RateLimit-Remaining"))) h.remaining = v;
  if (auto v = Number(r.FindHeader("RateLimit-Reset"))) h.reset_at = now + *v;
  return h;
}

}  // namespace outboxd::providers
