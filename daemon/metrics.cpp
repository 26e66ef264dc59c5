#include "daemon/metrics.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/service.h"

namespace outboxd {

std::string EscapeLabel(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out.push_back(c);
  }
  return out;
}

void AppendMetricHeader(std::string* out, std::string_view name, std::string_view type,
                        std::string_view help) {
  fmt::format_to(std::back_inserter(*out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

std::string FormatMetrics(const std::map<std::string, store::ProviderStats>& stats,
                          int64_t db_used_bytes, int64_t db_file_bytes,
                          const ServiceCounters& counters, double now) {
  std::string out;
  auto it = std::back_inserter(out);
  AppendMetricHeader(&out, "outboxd_events", "gauge", "Rows in the outbox by provider and state.");
  for (const auto& [name, st] : stats) {
    for (int i = 0; i < store::kStateCount; ++i) {
      fmt::format_to(it, "outboxd_events{{provider=\"{}\",state=\"{}\"}} {}\n", EscapeLabel(name),
                     store::StateName(static_cast<store::State>(i)), st.count[i]);
    }
  }
  AppendMetricHeader(&out, "outboxd_oldest_pending_age_seconds", "gauge",
                     "Age of the oldest pending event per provider.");
  for (const auto& [name, st] : stats) {
    double age = st.oldest_pending_created_at > 0 ? now - st.oldest_pending_created_at : 0;
    fmt::format_to(it, "outboxd_oldest_pending_age_seconds{{provider=\"{}\"}} {:.3f}\n",
                   EscapeLabel(name), age < 0 ? 0.0 : age);
  }
  AppendMetricHeader(&out, "outboxd_database_bytes", "gauge", "Bytes of database pages in use.");
  fmt::format_to(it, "outboxd_database_bytes {}\n", db_used_bytes);
  AppendMetricHeader(&out, "outboxd_database_file_bytes", "gauge", "Size of the database file.");
  fmt::format_to(it, "outboxd_database_file_bytes {}\n", db_file_bytes);
  AppendMetricHeader(&out, "outboxd_enqueued_total", "counter",
                     "Events accepted and committed since start.");
  fmt::format_to(it, "outboxd_enqueued_total {}\n", counters.enqueued);
  AppendMetricHeader(&out, "outboxd_duplicates_total", "counter",
                     "Enqueues answered with an already kept event (same key).");
  fmt::format_to(it, "outboxd_duplicates_total {}\n", counters.duplicates);
  AppendMetricHeader(&out, "outboxd_queue_full_total", "counter",
                     "Enqueue requests refused because the store was full.");
  fmt::format_to(it, "outboxd_queue_full_total {}\n", counters.queue_full);
  AppendMetricHeader(&out, "outboxd_rejected_total", "counter", "Requests rejected, by reason.");
  fmt::format_to(it, "outboxd_rejected_total{{reason=\"invalid_event\"}} {}\n", counters.invalid);
  fmt::format_to(it, "outboxd_rejected_total{{reason=\"bad_request\"}} {}\n",
                 counters.bad_requests);
  return out;
}

bool WriteFileAtomically(const std::string& path, std::string_view text, std::string* error) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = fmt::format("{}: {}", tmp, std::strerror(errno));
    return false;
  }
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = fmt::format("{}: {}", tmp, std::strerror(errno));
      ::close(fd);
      ::unlink(tmp.c_str());
      return false;
    }
    off += static_cast<size_t>(n);
  }
  bool synced = ::fsync(fd) == 0;
  bool closed = ::close(fd) == 0;
  if (!synced || !closed) {
    *error = fmt::format("{}: {}", tmp, std::strerror(errno));
    ::unlink(tmp.c_str());
    return false;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = fmt::format("{}: {}", path, std::strerror(errno));
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace outboxd
