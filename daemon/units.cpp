#include "daemon/units.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdlib>

namespace outboxd {
namespace {

// Reads a non-negative decimal number at the front of `s`.
bool TakeNumber(std::string_view* s, double* value) {
  size_t i = 0;
  bool digits = false, dot = false;
  while (i < s->size() &&
         (std::isdigit(static_cast<unsigned char>((*s)[i])) || ((*s)[i] == '.' && !dot))) {
    if ((*s)[i] == '.')
      dot = true;
    else
      digits = true;
    ++i;
  }
  if (!digits) return false;
  *value = std::strtod(std::string(s->substr(0, i)).c_str(), nullptr);
  s->remove_prefix(i);
  return true;
}

}  // namespace

bool ParseDuration(std::string_view text, double* seconds, std::string* error) {
  std::string_view s = text;
  double total = 0;
  bool any = false;
  while (!s.empty()) {
    double v;
    if (!TakeNumber(&s, &v)) {
      *error = fmt::format("\"{}\" is not a duration (examples: 500ms, 30s, 5m, 1h30m, 7d)", text);
      return false;
    }
    size_t i = 0;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    std::string_view unit = s.substr(0, i);
    s.remove_prefix(i);
    double mult;
    if (unit == "ms")
      mult = 0.001;
    else if (unit == "s" || (unit.empty() && s.empty() && !any))
      mult = 1;
    else if (unit == "m" || unit == "min")
      mult = 60;
    else if (unit == "h")
      mult = 3600;
    else if (unit == "d")
      mult = 86400;
    else if (unit == "w")
      mult = 7 * 86400;
    else {
      *error = fmt::format("\"{}\": unknown unit \"{}\" (use ms, s, m, h, d, w)", text, unit);
      return false;
    }
    total += v * mult;
    any = true;
  }
  if (!any) {
    *error = "empty duration";
    return false;
  }
  *seconds = total;
  return true;
}

bool ParseSize(std::string_view text, int64_t* bytes, std::string* error) {
  std::string_view s = text;
  double v;
  if (!TakeNumber(&s, &v)) {
    *error = fmt::format("\"{}\" is not a size (examples: 4096, 64KiB, 256MiB, 1GB)", text);
    return false;
  }
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  double mult;
  if (s.empty() || s == "B")
    mult = 1;
  else if (s == "KiB" || s == "K")
    mult = 1024.0;
  else if (s == "MiB" || s == "M")
    mult = 1024.0 * 1024;
  else if (s == "GiB" || s == "G")
    mult = 1024.0 * 1024 * 1024;
  else if (s == "TiB")
    mult = 1024.0 * 1024 * 1024 * 1024;
  else if (s == "kB" || s == "KB")
    mult = 1e3;
  else if (s == "MB")
    mult = 1e6;
  else if (s == "GB")
    mult = 1e9;
  else if (s == "TB")
    mult = 1e12;
  else {
    *error = fmt::format("\"{}\": unknown unit \"{}\" (use B, KiB, MiB, GiB, kB, MB, GB)", text, s);
    return false;
  }
  double b = v * mult;
  if (b > 9e18) {
    *error = fmt::format("\"{}\" is too large", text);
    return false;
  }
  *bytes = static_cast<int64_t>(std::llround(b));
  return true;
}

bool ParseRate(std::string_view text, providers::Rate* rate, std::string* error) {
  size_t slash = text.find('/');
  std::string_view num = text.substr(0, slash);
  double v;
  std::string_view rest = num;
  if (slash == std::string_view::npos || !TakeNumber(&rest, &v) || !rest.empty() || v <= 0) {
    *error = fmt::format("\"{}\" is not a rate (examples: 20/s, 1000/min, 3600/h)", text);
    return false;
  }
  std::string_view unit = text.substr(slash + 1);
  double period;
  if (unit == "s" || unit == "sec" || unit == "second")
    period = 1;
  else if (unit == "m" || unit == "min" || unit == "minute")
    period = 60;
  else if (unit == "h" || unit == "hour")
    period = 3600;
  else if (unit == "d" || unit == "day")
    period = 86400;
  else {
    *error = fmt::format("\"{}\": unknown period \"{}\" (use s, min, h, d)", text, unit);
    return false;
  }
  rate->count = v;
  rate->period_s = period;
  return true;
}

std::string FormatRate(const providers::Rate& rate) {
  if (rate.count <= 0) return "unlimited";
  const char* unit = rate.period_s >= 86400  ? "d"
                     : rate.period_s >= 3600 ? "h"
                     : rate.period_s >= 60   ? "min"
                                             : "s";
  double period = rate.period_s >= 86400  ? 86400
                  : rate.period_s >= 3600 ? 3600
                  : rate.period_s >= 60   ? 60
                                          : 1;
  return fmt::format("{:g}/{}", rate.count * period / rate.period_s, unit);
}

std::string FormatSize(int64_t bytes) {
  if (bytes >= (1ll << 30) && bytes % (1ll << 30) == 0) return fmt::format("{}GiB", bytes >> 30);
  if (bytes >= (1ll << 20) && bytes % (1ll << 20) == 0) return fmt::format("{}MiB", bytes >> 20);
  if (bytes >= (1ll << 10) && bytes % (1ll << 10) == 0) return fmt::format("{}KiB", bytes >> 10);
  return fmt::format("{}B", bytes);
}

}  // namespace outboxd
