// Rate-limit fidelity against the simulator enforcing MoEngage's 1000/min
// with x-ratelimit-* headers: requests per 60 s window, 429s received, and
// the delay from an announced reset to the next request.
//
//   ratelimit_bench [--minutes M]
#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/common/daemon_process.h"
#include "tests/sim/sim_process.h"

using outboxd::testing::DaemonProcess;
using outboxd::testing::LineClient;
using outboxd::testing::SimProcess;

int main(int argc, char** argv) {
  double minutes = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--minutes") minutes = std::stod(argv[i + 1]);
  }
  auto sim = SimProcess::Start();
  if (!sim) return 1;
  outboxd::testing::TempDir dir;
  outboxd::testing::WriteFile(
      dir / "c.toml",
      fmt::format("[store]\npath = \"{0}/outbox.db\"\nsynchronous = \"normal\"\n[ipc]\nsocket = "
                  "\"{0}/s.sock\"\n"
                  "[log]\nlevel = \"warning\"\n[providers.moengage]\nbase_url = \"{1}\"\n"
                  "workspace_id = \"WS123\"\napi_key = \"moe-key\"\nconcurrency = 8\n",
                  dir.path(), sim->base_url()));
  DaemonProcess d;
  if (!d.Start({"-c", dir / "c.toml"}, dir / "log") || !d.WaitReady(dir / "s.sock")) return 1;
  LineClient c(dir / "s.sock");
  long total = static_cast<long>(1000 * minutes) + 500;
  for (long done = 0; done < total;) {
    std::string batch;
    for (int n = 0; n < 1000 && done < total; ++n, ++done) {
      batch +=
          std::string(n ? "," : "") + R"({"recommendationId":"r)" + std::to_string(done) + "\"}";
    }
    c.Ask(R"({"op":"enqueue","provider":"moengage","events":[)" + batch + "]}");
  }
  outboxd::testing::WaitMs(static_cast<int>(minutes * 60000));

  rapidjson::Document reqs;
  reqs.Parse(sim->Requests().c_str());
  std::vector<double> ok_times;
  long n429 = 0;
  for (const auto& r : reqs["requests"].GetArray()) {
    if (!r["status"].IsInt()) continue;
    if (r["status"].GetInt() == 429) ++n429;
    ok_times.push_back(r["time"].GetDouble());
  }
  std::sort(ok_times.begin(), ok_times.end());
  size_t busiest = 0;
  for (size_t i = 0; i < ok_times.size(); ++i) {
    size_t j =
        std::lower_bound(ok_times.begin(), ok_times.end(), ok_times[i] + 60) - ok_times.begin();
    busiest = std::max(busiest, j - i);
  }
  std::printf("| measure | figure | limit |\n| --- | ---: | --- |\n");
  double t0 = ok_times.empty() ? 0 : ok_times.front();
  for (int w = 0; w < static_cast<int>(minutes); ++w) {
    auto a = std::lower_bound(ok_times.begin(), ok_times.end(), t0 + 60 * w);
    auto b = std::lower_bound(ok_times.begin(), ok_times.end(), t0 + 60 * (w + 1));
    std::printf("| requests in minute %d | %ld | 1000 |\n", w + 1, static_cast<long>(b - a));
  }
  std::printf("| busiest 60 s window (sliding) | %zu | 1000 |\n", busiest);
  std::printf("| 429s received | %ld | 0 |\n", n429);
  std::printf("| share of the allowed rate used | %.1f%% | 100%% |\n",
              100.0 * static_cast<double>(ok_times.size()) / (1000 * minutes));

  // A forced reset: every request answered 429 for 5 s, with x-ratelimit-reset.
  size_t seen = reqs["requests"].Size();
  sim->Config(R"({"faults":{"moengage":{"storm_429":{"reset_in_s":5}}}})");
  outboxd::testing::WaitMs(9000);
  reqs.Parse(sim->Requests(static_cast<int>(seen)).c_str());
  double first_429 = 0, next = 0;
  for (const auto& r : reqs["requests"].GetArray()) {
    if (!r["status"].IsInt()) continue;
    if (r["status"].GetInt() == 429 && first_429 == 0) first_429 = r["time"].GetDouble();
    if (r["status"].GetInt() == 200 && first_429 > 0 && next == 0) next = r["time"].GetDouble();
  }
  double reset = std::floor(first_429 + 5 + 0.999);  // what x-ratelimit-reset said
  std::printf("| first request after an announced reset | %+.0f ms | within 50 ms after it |\n",
              (next - reset) * 1000);
  d.Kill(SIGTERM);
  return 0;
}
