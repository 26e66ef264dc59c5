// Helpers shared by the benchmarks: a local nginx sink and /proc readings.
#ifndef OUTBOXD_TESTS_BENCH_BENCH_UTIL_H_
#define OUTBOXD_TESTS_BENCH_BENCH_UTIL_H_

#include <fmt/format.h>

#include <cstring>
#include <string>

#include "tests/common/daemon_process.h"

namespace outboxd::bench {

// Starts nginx answering 200 on 127.0.0.1:port; false if it did not start.
inline bool StartNginx(const std::string& dir, int port) {
  testing::WriteFile(
      dir + "/nginx.conf",
      fmt::format("worker_processes 1;\npid {0}/nginx.pid;\nerror_log {0}/nginx.err;\n"
                  "events {{ worker_connections 1024; }}\nhttp {{\n access_log off;\n"
                  " client_body_temp_path {0};\n keepalive_requests 1000000;\n"
                  " server {{ listen 127.0.0.1:{1}; location / {{ return 200 \"ok\"; }} }}\n}}\n",
                  dir, port));
  std::string out;
  return testing::RunCommand({"nginx", "-c", dir + "/nginx.conf"}, &out) == 0;
}

inline void StopNginx(const std::string& dir) {
  std::string out;
  testing::RunCommand({"nginx", "-c", dir + "/nginx.conf", "-s", "stop"}, &out);
}

// A field of /proc/PID/status in KiB ("VmRSS:", "VmHWM:").
inline long StatusKb(pid_t pid, const char* field) {
  std::string s = testing::ReadFile("/proc/" + std::to_string(pid) + "/status");
  size_t at = s.find(field);
  return at == std::string::npos ? -1 : std::stol(s.substr(at + std::strlen(field) + 1));
}

}  // namespace outboxd::bench

#endif  // OUTBOXD_TESTS_BENCH_BENCH_UTIL_H_
