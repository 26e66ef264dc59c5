// Logging: one line per event worth knowing, on stderr, with sd-daemon
// priority prefixes ("<3>" ...) so journald keeps the levels.
//
// Every line passes through a scrubber that replaces each registered secret
// value with "***": a secret that slips into a message (an error echoing a
// header, say) still never reaches the log.
//
// Thread rules: Log may be called from any thread; SetLevel and AddSecret
// are for start-up and reload, from the main thread.
#ifndef OUTBOXD_DAEMON_LOG_H_
#define OUTBOXD_DAEMON_LOG_H_

#include <fmt/format.h>

#include <string>
#include <string_view>
#include <vector>

namespace outboxd {

enum class LogLevel { kError = 3, kWarning = 4, kInfo = 6, kDebug = 7 };

// Parses "error", "warning", "info", "debug".
bool ParseLogLevel(std::string_view name, LogLevel* level);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
// Replaces the set of secret values scrubbed from every line.
void SetLogSecrets(std::vector<std::string> secrets);
// Where lines go; stderr by default. For tests.
void SetLogSink(void (*sink)(std::string_view line));
// Replaces every secret in `text` with "***".
std::string ScrubSecrets(std::string_view text);

void LogLine(LogLevel level, std::string_view message);

template <typename... Args>
void Log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (!LogEnabled(level)) return;
  LogLine(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace outboxd

#define OUTBOXD_LOG_ERROR(...) ::outboxd::Log(::outboxd::LogLevel::kError, __VA_ARGS__)
#define OUTBOXD_LOG_WARN(...) ::outboxd::Log(::outboxd::LogLevel::kWarning, __VA_ARGS__)
#define OUTBOXD_LOG_INFO(...) ::outboxd::Log(::outboxd::LogLevel::kInfo, __VA_ARGS__)
#define OUTBOXD_LOG_DEBUG(...) ::outboxd::Log(::outboxd::LogLevel::kDebug, __VA_ARGS__)

#endif  // OUTBOXD_DAEMON_LOG_H_
