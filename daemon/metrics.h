// Prometheus text format (version 0.0.4) for what the store and the socket
// server know: rows by provider and state, oldest pending age, database
// size, and the server's counters. The delivery engine appends its own.
// Thread rules: pure functions.
#ifndef OUTBOXD_DAEMON_METRICS_H_
#define OUTBOXD_DAEMON_METRICS_H_

#include <map>
#include <string>
#include <string_view>

#include "store/store.h"

namespace outboxd {

struct ServiceCounters;

std::string FormatMetrics(const std::map<std::string, store::ProviderStats>& stats,
                          int64_t db_used_bytes, int64_t db_file_bytes,
                          const ServiceCounters& counters, double now);

// Escapes a label value (backslash, quote, newline).
std::string EscapeLabel(std::string_view value);

// Appends "# HELP" and "# TYPE" lines for a metric.
void AppendMetricHeader(std::string* out, std::string_view name, std::string_view type,
                        std::string_view help);

// Writes `text` to `path` atomically (temporary file, fsync, rename), for a
// node_exporter textfile collector. False with `error` set on failure.
bool WriteFileAtomically(const std::string& path, std::string_view text, std::string* error);

}  // namespace outboxd

#endif  // OUTBOXD_DAEMON_METRICS_H_
