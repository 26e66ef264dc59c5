// Parsing of the configuration's units: durations ("500ms", "30s", "5m",
// "1h30m", "7d"), sizes ("4096", "64KiB", "256MiB", "1GB") and rates
// ("20/s", "1000/min", "3600/h"). Each returns false with a reason on bad
// input. Thread rules: pure functions.
#ifndef OUTBOXD_DAEMON_UNITS_H_
#define OUTBOXD_DAEMON_UNITS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "providers/provider.h"

namespace outboxd {

bool ParseDuration(std::string_view text, double* seconds, std::string* error);
bool ParseSize(std::string_view text, int64_t* bytes, std::string* error);
bool ParseRate(std::string_view text, providers::Rate* rate, std::string* error);

// "1000/min", "20/s", "unlimited".
std::string FormatRate(const providers::Rate& rate);
// "256MiB"-style, for messages.
std::string FormatSize(int64_t bytes);

}  // namespace outboxd

#endif  // OUTBOXD_DAEMON_UNITS_H_
