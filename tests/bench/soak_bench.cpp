// Soak: outboxd at a steady 1000 events/s to a local sink for N minutes,
// printing every minute the RSS, the database size on disk and the counts.
// Retention is one minute, so the file must stay flat.
//
//   soak_bench [--minutes N] [--rate EVENTS_PER_S]
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/bench/bench_util.h"

using Clock = std::chrono::steady_clock;
using outboxd::testing::DaemonProcess;
using outboxd::testing::LineClient;

int main(int argc, char** argv) {
  double minutes = 30;
  int rate = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--minutes")
      minutes = std::stod(argv[i + 1]);
    else if (a == "--rate")
      rate = std::stoi(argv[i + 1]);
  }
  std::string dir = "/var/tmp/outboxd-soak";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const int port = 18090;
  if (!outboxd::bench::StartNginx(dir, port)) return 1;
  outboxd::testing::WriteFile(
      dir + "/c.toml",
      fmt::format("[store]\npath = \"{0}/outbox.db\"\nkeep_delivered = \"1m\"\n[ipc]\nsocket = "
                  "\"{0}/s.sock\"\n"
                  "[log]\nlevel = \"warning\"\n[providers.sink]\ntype = \"webhook\"\n"
                  "url = \"http://127.0.0.1:{1}/soak\"\n",
                  dir, port));
  DaemonProcess d;
  if (!d.Start({"-c", dir + "/c.toml"}, dir + "/log") || !d.WaitReady(dir + "/s.sock")) return 1;
  LineClient c(dir + "/s.sock");
  std::printf("| minute | enqueued | RSS MiB | database MiB (db + WAL) | stats |\n");
  std::printf("| ---: | ---: | ---: | ---: | --- |\n");
  auto start = Clock::now();
  long sent = 0;
  int next_minute = 1;
  std::string pad(200, 'x');
  while (std::chrono::duration<double>(Clock::now() - start).count() < minutes * 60) {
    // Batches of rate/10 every 100 ms.
    std::string batch;
    for (int i = 0; i < rate / 10; ++i)
      batch += fmt::format("{}{{\"n\":{},\"p\":\"{}\"}}", i ? "," : "", sent++, pad);
    c.Ask(R"({"op":"enqueue","provider":"sink","events":[)" + batch + "]}");
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    double next = std::ceil(elapsed * 10) / 10;
    outboxd::testing::WaitMs(static_cast<int>((next - elapsed) * 1000));
    if (elapsed >= next_minute * 60) {
      uintmax_t db = std::filesystem::file_size(dir + "/outbox.db");
      std::error_code ec;
      uintmax_t wal = std::filesystem::file_size(dir + "/outbox.db-wal", ec);
      auto stats = c.Ask(R"({"op":"stats"})");
      std::string brief = stats ? stats->substr(0, std::min<size_t>(stats->size(), 120)) : "";
      std::printf("| %d | %ld | %.1f | %.1f | `%s` |\n", next_minute, sent,
                  outboxd::bench::StatusKb(d.pid(), "VmRSS:") / 1024.0,
                  static_cast<double>(db + (ec ? 0 : wal)) / (1 << 20), brief.c_str());
      std::fflush(stdout);
      ++next_minute;
    }
  }
  d.Kill(SIGTERM);
  outboxd::bench::StopNginx(dir);
  std::filesystem::remove_all(dir);
  return 0;
}
