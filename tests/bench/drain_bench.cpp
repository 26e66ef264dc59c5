// End-to-end drain, memory and start-up.
//
// 1. A local HTTP sink (nginx, answering 200) and its own rate with wrk.
// 2. outboxd drains N queued events to it, one event per request, no rate
//    limit: events/s and CPU per event, RSS idle and at the peak.
// 3. READY=1 time and RSS with a backlog of M rows; stripped binary sizes.
//
//   drain_bench [--events N] [--backlog M] [--dir DIR]
#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>

#include "store/store.h"
#include "tests/bench/bench_util.h"

namespace {

using Clock = std::chrono::steady_clock;
using outboxd::bench::StatusKb;
using outboxd::testing::DaemonProcess;
using outboxd::testing::LineClient;
using outboxd::testing::RunCommand;
using outboxd::testing::WriteFile;

double CpuSeconds(pid_t pid) {
  std::string s = outboxd::testing::ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t close = s.rfind(')');
  std::vector<std::string> f;
  std::string cur;
  for (char c : s.substr(close + 2)) {
    if (c == ' ') {
      f.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  // utime and stime are fields 14 and 15 (index 11 and 12 after the name).
  return (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int64_t Delivered(const std::string& socket) {
  LineClient c(socket);
  auto r = c.Ask(R"({"op":"stats"})");
  if (!r) return -1;
  size_t at = r->find("\"delivered\":");
  return at == std::string::npos ? -1 : std::stoll(r->substr(at + 12));
}

}  // namespace

int main(int argc, char** argv) {
  long events = 100000, backlog = 1000000;
  std::string base = "/var/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--events")
      events = std::stol(argv[i + 1]);
    else if (a == "--backlog")
      backlog = std::stol(argv[i + 1]);
    else if (a == "--dir")
      base = argv[i + 1];
  }
  std::string dir = base + "/outboxd-drain-bench";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const int port = 18089;

  // 1. The sink.
  std::string out;
  if (!outboxd::bench::StartNginx(dir, port)) {
    std::fprintf(stderr, "nginx did not start\n");
    return 1;
  }
  RunCommand({"wrk", "-t1", "-c16", "-d5s", fmt::format("http://127.0.0.1:{}/", port)}, &out);
  double sink_rate = 0;
  if (size_t at = out.find("Requests/sec:"); at != std::string::npos) {
    sink_rate = std::stod(out.substr(at + 13));
  }

  // 2. The drain.
  WriteFile(
      dir + "/c.toml",
      fmt::format(
          "[store]\npath = \"{0}/outbox.db\"\nmax_size = \"2GiB\"\n[ipc]\nsocket = \"{0}/s.sock\"\n"
          "[log]\nlevel = \"warning\"\n[providers.sink]\ntype = \"webhook\"\n"
          "url = \"http://127.0.0.1:{1}/hook\"\nconcurrency = 16\n",
          dir, port));
  DaemonProcess d;
  if (!d.Start({"-c", dir + "/c.toml"}, dir + "/log") || !d.WaitReady(dir + "/s.sock")) {
    std::fprintf(stderr, "outboxd did not start\n%s", d.Log().c_str());
    return 1;
  }
  long rss_idle = StatusKb(d.pid(), "VmRSS:");
  long anon_idle = StatusKb(d.pid(), "RssAnon:");
  LineClient c(dir + "/s.sock");
  c.Ask(R"({"op":"pause","provider":"sink"})");
  std::string pad(200, 'x');
  for (long done = 0; done < events;) {
    std::string batch;
    int n = 0;
    for (; n < 2000 && done < events; ++n, ++done) {
      batch += fmt::format("{}{{\"seq\":{},\"pad\":\"{}\"}}", n ? "," : "", done, pad);
    }
    c.Ask(R"({"op":"enqueue","provider":"sink","events":[)" + batch + "]}", 60000);
  }
  double cpu0 = CpuSeconds(d.pid());
  auto t0 = Clock::now();
  c.Ask(R"({"op":"resume","provider":"sink"})");
  while (Delivered(dir + "/s.sock") < events) outboxd::testing::WaitMs(20);
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  double cpu = CpuSeconds(d.pid()) - cpu0;
  long anon_end = StatusKb(d.pid(), "RssAnon:");
  long rss_peak = StatusKb(d.pid(), "VmHWM:");
  d.Kill(SIGTERM);
  outboxd::bench::StopNginx(dir);

  // 3. A large backlog: start-up and memory.
  std::filesystem::remove(dir + "/outbox.db");
  {
    outboxd::store::Options o;
    o.path = dir + "/outbox.db";
    o.max_size_bytes = 4ll << 30;
    o.synchronous_full = false;
    std::unique_ptr<outboxd::store::Store> s;
    if (!outboxd::store::Store::Open(o, &s).ok()) return 1;
    std::string body = "{\"pad\":\"" + pad + "\"}";
    for (long done = 0; done < backlog; done += 10000) {
      std::vector<std::vector<outboxd::store::NewEvent>> batches(1);
      double now = static_cast<double>(std::time(nullptr));
      for (int i = 0; i < 10000; ++i) batches[0].push_back({"sink", "", "{}", body, now});
      std::vector<outboxd::store::BatchResult> r;
      if (!s->Enqueue(batches, &r).ok()) return 1;
    }
  }
  std::string notify = dir + "/notify";
  int nfd = socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, notify.c_str(), sizeof(addr.sun_path) - 1);
  bind(nfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  WriteFile(dir + "/c2.toml",
            fmt::format("[store]\npath = \"{0}/outbox.db\"\nmax_size = \"4GiB\"\n[ipc]\nsocket = "
                        "\"{0}/s2.sock\"\n"
                        "[log]\nlevel = \"warning\"\n[providers.sink]\ntype = \"webhook\"\n"
                        "url = \"http://127.0.0.1:9/\"\n",
                        dir));
  DaemonProcess big;
  auto s0 = Clock::now();
  big.Start({"-c", dir + "/c2.toml"}, dir + "/log2", {{"NOTIFY_SOCKET", notify}});
  double ready_ms = -1;
  for (;;) {
    pollfd p{nfd, POLLIN, 0};
    if (poll(&p, 1, 30000) <= 0) break;
    char buf[512];
    ssize_t n = recv(nfd, buf, sizeof(buf), 0);
    if (n > 0 && std::string(buf, static_cast<size_t>(n)).find("READY=1") != std::string::npos) {
      ready_ms = std::chrono::duration<double, std::milli>(Clock::now() - s0).count();
      break;
    }
  }
  LineClient bc(dir + "/s2.sock");
  bc.Ask(R"({"op":"pause","provider":"sink"})");
  bc.Ask(R"({"op":"stats"})");
  long rss_backlog = StatusKb(big.pid(), "VmRSS:");
  long anon_backlog = StatusKb(big.pid(), "RssAnon:");
  big.Kill(SIGTERM);

  auto stripped = [&](const std::string& name) {
    std::string copy = dir + "/" + name;
    std::filesystem::copy_file(DaemonProcess::Binary(name), copy,
                               std::filesystem::copy_options::overwrite_existing);
    RunCommand({"strip", copy}, &out);
    return std::filesystem::file_size(copy);
  };

  std::printf("| measure | figure | limit beside it |\n| --- | ---: | --- |\n");
  std::printf(
      "| drain, %ld events, 1 per request (events/s) | %.0f | sink alone with wrk: %.0f req/s |\n",
      events, events / secs, sink_rate);
  std::printf("| CPU per delivered event | %.1f µs | |\n", cpu / events * 1e6);
  std::printf(
      "| RSS idle (of which the daemon's own, RssAnon) | %.1f MiB (%.1f MiB) | the rest: shared "
      "library pages |\n",
      rss_idle / 1024.0, anon_idle / 1024.0);
  std::printf("| RSS peak while draining (RssAnon after) | %.1f MiB (%.1f MiB) | |\n",
              rss_peak / 1024.0, anon_end / 1024.0);
  std::printf("| READY=1 with %ld rows queued | %.0f ms | |\n", backlog, ready_ms);
  std::printf("| RSS with %ld rows queued (RssAnon) | %.1f MiB (%.1f MiB) | |\n", backlog,
              rss_backlog / 1024.0, anon_backlog / 1024.0);
  std::printf("| outboxd, stripped | %.0f KiB | |\n", stripped("outboxd") / 1024.0);
  std::printf("| outboxctl, stripped | %.0f KiB | |\n", stripped("outboxctl") / 1024.0);
  close(nfd);
  std::filesystem::remove_all(dir);
  return 0;
}
