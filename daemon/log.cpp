#include "daemon/log.h"

#include <unistd.h>

#include <atomic>
#include <mutex>

namespace outboxd {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_mu;
std::vector<std::string> g_secrets;  // guarded by g_mu
void (*g_sink)(std::string_view) = nullptr;

void WriteStderr(std::string_view line) {
  // One write per line so concurrent writers never interleave mid-line.
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

}  // namespace

bool ParseLogLevel(std::string_view name, LogLevel* level) {
  if (name == "error")
    *level = LogLevel::kError;
  else if (name == "warning")
    *level = LogLevel::kWarning;
  else if (name == "info")
    *level = LogLevel::kInfo;
  else if (name == "debug")
    *level = LogLevel::kDebug;
  else
    return false;
  return true;
}

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }

bool LogEnabled(LogLevel level) { return static_cast<int>(level) <= g_level.load(); }

void SetLogSecrets(std::vector<std::string> secrets) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_secrets.clear();
  for (auto& s : secrets) {
    if (!s.empty()) g_secrets.push_back(std::move(s));
  }
}

void SetLogSink(void (*sink)(std::string_view line)) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_sink = sink;
}

std::string ScrubSecrets(std::string_view text) {
  std::lock_guard<std::mutex> lock(g_mu);
  std::string out(text);
  for (const auto& secret : g_secrets) {
    size_t pos = 0;
    while ((pos = out.find(secret, pos)) != std::string::npos) {
      out.replace(pos, secret.size(), "***");
      pos += 3;
    }
  }
  return out;
}

void LogLine(LogLevel level, std::string_view message) {
  std::string line = fmt::format("<{}>{}", static_cast<int>(level), ScrubSecrets(message));
  // A message never spans lines: journald would split it and lose the prefix.
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  line.push_back('\n');
  void (*sink)(std::string_view);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    sink = g_sink;
  }
  if (sink)
    sink(line);
  else
    WriteStderr(line);
}

}  // namespace outboxd
