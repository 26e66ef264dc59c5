// Durable ingest over the socket, beside the disk's own limits.
//
// Starts outboxd on a temporary database (synchronous=full), pauses its only
// lane so nothing drains, and drives it with N clients sending ~300-byte
// events: request-reply (one event, wait for the ack) and pipelined (a window
// of requests in flight per client). Prints events/s and ack latency p50/p99.
// In the same run, on the same disk: the store's one-event transactions (the
// fsync limit) and 1000-event transactions (the insert limit).
//
//   ingest_bench [--seconds S] [--dir DIR]
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "tests/common/daemon_process.h"

namespace {

using Clock = std::chrono::steady_clock;
using outboxd::testing::DaemonProcess;
using outboxd::testing::LineClient;

std::string EventLine(int client, int64_t seq) {
  // A ~300-byte request, as a device would send.
  std::string pad(200, 'x');
  return fmt::format(
      R"({{"op":"enqueue","provider":"sink","event":{{"device":"kiosk-{:04d}","seq":{},"kind":"tap","note":"{}"}}}})",
      client, seq, pad);
}

struct Result {
  double events_per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  int64_t events = 0;
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

Result RunClients(const std::string& socket, int clients, int window, double seconds) {
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> lat(static_cast<size_t>(clients));
  std::vector<int64_t> counts(static_cast<size_t>(clients), 0);
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      LineClient cl(socket);
      if (!cl.connected()) return;
      std::vector<Clock::time_point> sent;
      int64_t seq = 0;
      size_t head = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        // Fill the window, then read one ack.
        std::string batch;
        while (static_cast<int>(sent.size() - head) < window) {
          batch += EventLine(c, seq++);
          batch += '\n';
          sent.push_back(Clock::now());
        }
        if (!batch.empty() && !cl.Send(batch)) return;
        auto line = cl.ReadLine(10000);
        if (!line || line->find("\"ok\":true") == std::string::npos) return;
        lat[static_cast<size_t>(c)].push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - sent[head]).count());
        ++head;
        ++counts[static_cast<size_t>(c)];
      }
      while (head < sent.size()) {  // drain the acks still owed
        if (!cl.ReadLine(10000)) break;
        ++head;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& t : threads) t.join();
  Result r;
  std::vector<double> all;
  for (int c = 0; c < clients; ++c) {
    r.events += counts[static_cast<size_t>(c)];
    all.insert(all.end(), lat[static_cast<size_t>(c)].begin(), lat[static_cast<size_t>(c)].end());
  }
  r.events_per_s = static_cast<double>(r.events) / elapsed;
  r.p50_ms = Percentile(all, 0.50);
  r.p99_ms = Percentile(all, 0.99);
  return r;
}

Result RawStore(const std::string& dir, int per_txn, double seconds) {
  outboxd::store::Options o;
  o.path = dir + fmt::format("/raw-{}.db", per_txn);
  o.max_size_bytes = 8ll << 30;
  std::unique_ptr<outboxd::store::Store> store;
  if (!outboxd::store::Store::Open(o, &store).ok()) return {};
  std::vector<std::vector<outboxd::store::NewEvent>> batches(1);
  std::string body(280, 'x');
  std::vector<double> lat;
  Result r;
  auto start = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - start).count() < seconds) {
    batches[0].clear();
    for (int i = 0; i < per_txn; ++i) {
      batches[0].push_back({"sink", "", "{}", body, 1.7e9});
    }
    std::vector<outboxd::store::BatchResult> results;
    auto t0 = Clock::now();
    if (!store->Enqueue(batches, &results).ok()) break;
    lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    r.events += per_txn;
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  r.events_per_s = static_cast<double>(r.events) / elapsed;
  r.p50_ms = Percentile(lat, 0.5);
  r.p99_ms = Percentile(lat, 0.99);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  std::string base = "/var/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--seconds")
      seconds = std::stod(argv[i + 1]);
    else if (a == "--dir")
      base = argv[i + 1];
  }
  std::string dir = base + "/outboxd-ingest-XXXXXX";
  if (!mkdtemp(dir.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  std::string config = dir + "/outboxd.toml";
  outboxd::testing::WriteFile(
      config, fmt::format("[store]\npath = \"{0}/outbox.db\"\nmax_size = \"8GiB\"\n"
                          "[ipc]\nsocket = \"{0}/s.sock\"\n[log]\nlevel = \"warning\"\n"
                          "[providers.sink]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n",
                          dir));
  DaemonProcess d;
  if (!d.Start({"-c", config}, dir + "/log") || !d.WaitReady(dir + "/s.sock")) {
    std::fprintf(stderr, "outboxd did not start:\n%s\n", d.Log().c_str());
    return 1;
  }
  LineClient ctl(dir + "/s.sock");
  ctl.Ask(R"({"op":"pause","provider":"sink"})");

  std::printf("| measure | clients | events/s | ack p50 ms | ack p99 ms |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: |\n");
  for (int window : {1, 64}) {
    for (int clients : {1, 4, 16}) {
      Result r = RunClients(dir + "/s.sock", clients, window, seconds);
      std::printf("| socket, %s | %d | %.0f | %.3f | %.3f |\n",
                  window == 1 ? "request-reply" : "pipelined (64 in flight)", clients,
                  r.events_per_s, r.p50_ms, r.p99_ms);
      std::fflush(stdout);
    }
  }
  d.Kill(SIGTERM);
  Result one = RawStore(dir, 1, seconds);
  std::printf("| raw store, 1 event per transaction (fsync limit) | 1 | %.0f | %.3f | %.3f |\n",
              one.events_per_s, one.p50_ms, one.p99_ms);
  Result big = RawStore(dir, 1000, seconds);
  std::printf(
      "| raw store, 1000 events per transaction (insert limit) | 1 | %.0f | %.3f | %.3f |\n",
      big.events_per_s, big.p50_ms, big.p99_ms);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
