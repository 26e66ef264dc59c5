// What edge devices do to a daemon, as tests on the real binary against the
// simulator: kill -9 loops, a flaky network, going offline, a 429 storm, a
// full disk, hostile input. Each prints the counts it measured.
#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "tests/daemon/process_util.h"
#include "tests/sim/sim_process.h"

namespace outboxd {
namespace {

using testing::DaemonProcess;
using testing::LineClient;
using testing::SimProcess;
using testing::TempDir;

std::string HookConfig(const TempDir& dir, const std::string& url, const std::string& extra = "") {
  return "[store]\npath = \"" + dir.path() + "/db/outbox.db\"\n" + extra + "[ipc]\nsocket = \"" +
         dir.path() +
         "/s.sock\"\n"
         "[delivery]\nbackoff_base = \"50ms\"\nbackoff_cap = \"500ms\"\nshutdown_timeout = \"1s\"\n"
         "[providers.hook]\ntype = \"webhook\"\nurl = \"" +
         url + "\"\ntimeout = \"300ms\"\nconcurrency = 4\n";
}

// Deliveries the simulator answered with 2xx, by body.
std::map<std::string, int> Delivered(SimProcess& sim) {
  rapidjson::Document d;
  d.Parse(sim.Requests().c_str());
  std::map<std::string, int> out;
  for (const auto& r : d["requests"].GetArray()) {
    if (r["status"].IsInt() && r["status"].GetInt() / 100 == 2) out[r["body"].GetString()]++;
  }
  return out;
}

bool Drained(const std::string& socket, int timeout_ms = 60000) {
  return testing::WaitForStats(
      socket,
      [](const rapidjson::Document& s) {
        return testing::StatOf(s, "hook", "pending") == 0 &&
               testing::StatOf(s, "hook", "inflight") == 0;
      },
      timeout_ms);
}

TEST_CASE("kill -9 loop: every acknowledged event arrives, unchanged; duplicates only from kills") {
  auto sim = SimProcess::Start();
  REQUIRE(sim);
  REQUIRE(sim->Config(R"({"faults":{"*":{"error_rate":0.15,"reset_rate":0.05}}})"));
  TempDir dir;
  testing::WriteFile(dir / "c.toml", HookConfig(dir, sim->base_url() + "/hook/in"));
  std::mt19937 rng(7);
  std::set<std::string> acked, sent;
  std::mutex mu;
  // OUTBOXD_KILL_CYCLES=200 for a longer run outside CI.
  const int kCycles =
      std::getenv("OUTBOXD_KILL_CYCLES") ? std::atoi(std::getenv("OUTBOXD_KILL_CYCLES")) : 20;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    DaemonProcess d;
    REQUIRE(d.Start({"-c", dir / "c.toml"}, dir / "log"));
    REQUIRE_MESSAGE(d.WaitReady(dir / "s.sock"), d.Log());
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int t = 0; t < 2; ++t) {
      clients.emplace_back([&, t] {
        LineClient c(dir / "s.sock");
        for (int i = 0; !stop; ++i) {
          std::string body = "{\"c\":" + std::to_string(cycle) + ",\"t\":" + std::to_string(t) +
                             ",\"i\":" + std::to_string(i) + "}";
          {
            std::lock_guard<std::mutex> lock(mu);
            sent.insert(body);
          }
          auto r = c.Ask(R"({"op":"enqueue","provider":"hook","event":)" + body + "}", 2000);
          if (!r) return;  // the daemon died
          if (r->find("\"ok\":true") != std::string::npos) {
            std::lock_guard<std::mutex> lock(mu);
            acked.insert(body);
          }
          testing::WaitMs(1);  // a device's pace, so the backlog drains within the test
        }
      });
    }
    testing::WaitMs(50 + static_cast<int>(rng() % 250));
    d.Kill(SIGKILL);
    stop = true;
    for (auto& c : clients) c.join();
  }
  REQUIRE(sim->Config(R"({"faults":{}})"));
  DaemonProcess d;
  REQUIRE(d.Start({"-c", dir / "c.toml"}, dir / "log"));
  REQUIRE(d.WaitReady(dir / "s.sock"));
  REQUIRE(Drained(dir / "s.sock"));
  auto delivered = Delivered(*sim);
  int missing = 0, duplicates = 0;
  for (const auto& body : acked) {
    auto it = delivered.find(body);
    if (it == delivered.end())
      ++missing;
    else
      duplicates += it->second - 1;
  }
  MESSAGE("kill -9 cycles: " << kCycles << ", acknowledged: " << acked.size()
                             << ", delivered: " << delivered.size() << ", missing: " << missing
                             << ", duplicates: " << duplicates);
  CHECK(acked.size() > 100);
  CHECK(missing == 0);
  // Events committed but killed before their reply may arrive too; nothing
  // arrives that was never sent, and no body arrives changed.
  for (const auto& entry : delivered) {
    const std::string& body = entry.first;
    CHECK_MESSAGE(sent.count(body), "unknown body " << body);
  }
  // At most the lane's concurrency was in flight at each kill.
  CHECK(duplicates <= 4 * kCycles);
}

TEST_CASE("flaky network: 30% refused, reset, hung or 5xx; everything delivered, nothing dead") {
  auto sim = SimProcess::Start();
  REQUIRE(sim);
  REQUIRE(sim->Config(R"({"faults":{"*":{"reset_rate":0.1,"hang_rate":0.1,"error_rate":0.1}}})"));
  TempDir dir;
  testing::WriteFile(dir / "c.toml", HookConfig(dir, sim->base_url() + "/hook/in"));
  DaemonProcess d;
  REQUIRE(d.Start({"-c", dir / "c.toml"}, dir / "log"));
  REQUIRE(d.WaitReady(dir / "s.sock"));
  LineClient c(dir / "s.sock");
  std::string events;
  for (int i = 0; i < 150; ++i)
    events += std::string(i ? "," : "") + "{\"i\":" + std::to_string(i) + "}";
  auto r = c.Ask(R"({"op":"enqueue","provider":"hook","events":[)" + events + "]}");
  REQUIRE(r);
  REQUIRE(r->find("\"ok\":true") != std::string::npos);
  REQUIRE_MESSAGE(Drained(dir / "s.sock", 120000), d.Log());
  auto s = c.Ask(R"({"op":"list","provider":"hook","limit":1000})");
  rapidjson::Document l;
  l.Parse(s->c_str());
  int max_attempts = 0, total = 0, dead = 0;
  for (const auto& e : l["events"].GetArray()) {
    max_attempts = std::max(max_attempts, e["attempts"].GetInt());
    total += e["attempts"].GetInt();
    dead += std::string(e["state"].GetString()) == "dead";
  }
  rapidjson::Document stats;
  stats.Parse(sim->Stats().c_str());
  MESSAGE("flaky: 150 events, requests seen by the server: " << stats["requests"].GetInt()
                                                             << ", attempts max " << max_attempts
                                                             << ", mean " << total / 150.0);
  CHECK(dead == 0);
  CHECK(Delivered(*sim).size() == 150);
  CHECK(max_attempts <= 12);
}

TEST_CASE("offline: attempts do not grow beyond the probes; the backlog drains on return") {
  auto sim = SimProcess::Start();
  REQUIRE(sim);
  int port = sim->port();
  TempDir dir;
  testing::WriteFile(dir / "c.toml", HookConfig(dir, sim->base_url() + "/hook/in"));
  sim->Stop();
  DaemonProcess d;
  REQUIRE(d.Start({"-c", dir / "c.toml"}, dir / "log"));
  REQUIRE(d.WaitReady(dir / "s.sock"));
  LineClient c(dir / "s.sock");
  std::string events;
  for (int i = 0; i < 200; ++i)
    events += std::string(i ? "," : "") + "{\"i\":" + std::to_string(i) + "}";
  REQUIRE(c.Ask(R"({"op":"enqueue","provider":"hook","events":[)" + events + "]}"));
  testing::WaitMs(3000);
  auto s = c.Ask(R"({"op":"list","provider":"hook","limit":1000})");
  rapidjson::Document l;
  l.Parse(s->c_str());
  int with_attempts = 0, probe_attempts = 0;
  for (const auto& e : l["events"].GetArray()) {
    if (e["attempts"].GetInt() > 0) {
      ++with_attempts;
      probe_attempts = e["attempts"].GetInt();
    }
  }
  auto st = c.Ask(R"({"op":"stats"})");
  MESSAGE("offline 3 s: events with attempts: " << with_attempts
                                                << ", probe attempts: " << probe_attempts);
  CHECK(with_attempts == 1);
  CHECK(probe_attempts <= 6);
  CHECK(st->find("\"state\":\"probing\"") != std::string::npos);
  testing::SimOptions so;
  so.port = port;
  auto back = SimProcess::Start(so);
  REQUIRE(back);
  CHECK(Drained(dir / "s.sock", 90000));
  CHECK(Delivered(*back).size() == 200);
}

TEST_CASE("429 storm: nothing is sent before the announced reset") {
  auto sim = SimProcess::Start();
  REQUIRE(sim);
  REQUIRE(sim->Config(R"({"faults":{"webhook":{"storm_429":{"reset_in_s":5}}}})"));
  TempDir dir;
  testing::WriteFile(dir / "c.toml", HookConfig(dir, sim->base_url() + "/hook/in"));
  DaemonProcess d;
  REQUIRE(d.Start({"-c", dir / "c.toml"}, dir / "log"));
  REQUIRE(d.WaitReady(dir / "s.sock"));
  LineClient c(dir / "s.sock");
  std::string events;
  for (int i = 0; i < 20; ++i)
    events += std::string(i ? "," : "") + "{\"i\":" + std::to_string(i) + "}";
  REQUIRE(c.Ask(R"({"op":"enqueue","provider":"hook","events":[)" + events + "]}"));
  REQUIRE(Drained(dir / "s.sock", 30000));
  rapidjson::Document reqs;
  reqs.Parse(sim->Requests().c_str());
  double first_429 = 0, first_ok = 0;
  int storm_answers = 0;
  for (const auto& r : reqs["requests"].GetArray()) {
    if (!r["status"].IsInt()) continue;
    if (r["status"].GetInt() == 429) {
      if (first_429 == 0) first_429 = r["time"].GetDouble();
      ++storm_answers;
    } else if (first_ok == 0) {
      first_ok = r["time"].GetDouble();
    }
  }
  MESSAGE("429 storm: 429 answers " << storm_answers << ", first request after it "
                                    << first_ok - first_429 << " s after the first 429");
  CHECK(storm_answers <= 4);  // only what was already in flight
  CHECK(first_ok - first_429 >= 4.0);
  auto s = c.Ask(R"({"op":"list","provider":"hook","limit":100})");
  rapidjson::Document l;
  l.Parse(s->c_str());
  for (const auto& e : l["events"].GetArray()) CHECK(e["attempts"].GetInt() == 1);
}

// Enqueues 16 KiB events until queue_full; returns acknowledged ids.
std::vector<int64_t> FillUp(LineClient& c, std::string* last) {
  std::vector<int64_t> ids;
  std::string pad(16 * 1024, 'p');
  for (int i = 0; i < 5000; ++i) {
    auto r = c.Ask(R"({"op":"enqueue","provider":"hook","event":{"i":)" + std::to_string(i) +
                   R"(,"pad":")" + pad + "\"}}");
    REQUIRE(r);
    *last = *r;
    if (r->find("\"ok\":true") == std::string::npos) break;
    rapidjson::Document d;
    d.Parse(r->c_str());
    ids.push_back(d["id"].GetInt64());
  }
  return ids;
}

TEST_CASE(
    "disk full: queue_full, nothing lost, file intact, enqueues work again after deliveries") {
  auto sim = SimProcess::Start();
  REQUIRE(sim);
  TempDir dir;
  std::string db_dir = dir / "db";
  mkdir(db_dir.c_str(), 0755);
  // A real small filesystem where the machine allows mounting; the quota
  // (store.max_size) is what fills otherwise.
  bool mounted = getuid() == 0 && mount("tmpfs", db_dir.c_str(), "tmpfs", 0, "size=2m") == 0;
  struct Unmount {
    std::string path;
    bool on;
    ~Unmount() {
      if (on) umount2(path.c_str(), MNT_DETACH);
    }
  } unmount{db_dir, mounted};
  // On the 2 MiB filesystem the disk fills long before the 16 MiB quota.
  std::string extra =
      std::string("max_size = \"") + (mounted ? "16MiB" : "2MiB") + "\"\nkeep_delivered = \"0s\"\n";
  MESSAGE(std::string(mounted ? "disk full on a 2 MiB tmpfs" : "disk full through store.max_size"));
  testing::WriteFile(dir / "c.toml", HookConfig(dir, sim->base_url() + "/hook/in", extra));
  {
    DaemonProcess d;
    REQUIRE(d.Start({"-c", dir / "c.toml"}, dir / "log"));
    REQUIRE(d.WaitReady(dir / "s.sock"));
    LineClient c(dir / "s.sock");
    REQUIRE(c.Ask(R"({"op":"pause","provider":"hook"})"));
    std::string last;
    auto ids = FillUp(c, &last);
    MESSAGE("stored before full: " << ids.size());
    CHECK(ids.size() > 20);
    CHECK(last.find("\"code\":\"queue_full\"") != std::string::npos);
    // Everything acknowledged is still there.
    for (int64_t id : ids) {
      auto g = c.Ask(R"({"op":"get","id":)" + std::to_string(id) + "}");
      REQUIRE(g);
      CHECK(g->find("\"ok\":true") != std::string::npos);
    }
    // Deliveries free space; enqueues succeed again.
    REQUIRE(c.Ask(R"({"op":"resume","provider":"hook"})"));
    REQUIRE_MESSAGE(Drained(dir / "s.sock"), d.Log());
    CHECK(Delivered(*sim).size() == ids.size());
    bool accepted = false;
    for (int i = 0; i < 100 && !accepted; ++i) {
      auto r = c.Ask(R"({"op":"enqueue","provider":"hook","event":{"again":true}})");
      accepted = r && r->find("\"ok\":true") != std::string::npos;
      if (!accepted) testing::WaitMs(100);
    }
    CHECK(accepted);
    d.Kill(SIGTERM);
  }
  std::string out;
  CHECK(testing::RunCommand({"sqlite3", db_dir + "/outbox.db", "PRAGMA integrity_check"}, &out) ==
        0);
  CHECK(out == "ok\n");
}

TEST_CASE(
    "hostile input: each bad request answered or refused, the daemon stays up, nothing stored") {
  TempDir dir;
  testing::WriteFile(dir / "c.toml", HookConfig(dir, "http://127.0.0.1:9/"));
  DaemonProcess d;
  REQUIRE(d.Start({"-c", dir / "c.toml"}, dir / "log"));
  REQUIRE(d.WaitReady(dir / "s.sock"));
  std::vector<std::pair<std::string, std::string>> corpus = {
      {"invalid UTF-8",
       "{\"op\":\"enqueue\",\"provider\":\"hook\",\"event\":{\"x\":\"\xc3\x28\"}}"},
      {"NUL byte", std::string("{\"op\":\"ping\"\0}", 14)},
      {"deep nesting", "{\"op\":\"enqueue\",\"provider\":\"hook\",\"event\":{\"x\":" +
                           std::string(10000, '[') + std::string(10000, ']') + "}}"},
      {"huge number", R"({"op":"enqueue","provider":"hook","event":{"x":1e99999}})"},
      {"wrong types", R"({"op":"enqueue","provider":7,"event":"no"})"},
      {"duplicated keys", R"({"op":"enqueue","provider":"hook","provider":"hook","event":{}})"},
      {"not an object", R"(["op","enqueue"])"},
      {"events not an array", R"({"op":"enqueue","provider":"hook","events":{}})"},
      {"key too long",
       R"({"op":"enqueue","provider":"hook","event":{},"key":")" + std::string(300, 'k') + "\"}"},
  };
  for (const auto& entry : corpus) {
    const std::string& name = entry.first;
    const std::string& line = entry.second;
    LineClient c(dir / "s.sock");
    auto r = c.Ask(line);
    REQUIRE_MESSAGE(r, name);
    CHECK_MESSAGE(r->find("\"ok\":false") != std::string::npos, name);
  }
  {  // a 2 MiB line: bad_request, then the connection closes
    LineClient c(dir / "s.sock");
    c.Send(R"({"op":"enqueue","provider":"hook","event":{"x":")" + std::string(2 << 20, 'x') +
           "\"}}\n");
    auto r = c.ReadLine();
    REQUIRE(r);
    CHECK(r->find("bad_request") != std::string::npos);
    CHECK_FALSE(c.ReadLine(2000).has_value());
  }
  {  // half a line, then gone
    LineClient c(dir / "s.sock");
    c.Send(R"({"op":"enqueue","provider":"hook","ev)");
  }
  // Thousands of idle connections: the limit refuses the excess, the rest wait.
  std::vector<std::unique_ptr<LineClient>> idle;
  for (int i = 0; i < 1100; ++i) idle.push_back(std::make_unique<LineClient>(dir / "s.sock"));
  LineClient late(dir / "s.sock");
  auto refused = late.ReadLine(5000);
  CHECK((!refused || refused->find("too many connections") != std::string::npos));
  idle.clear();
  // Once the daemon has seen those close, a new client is served.
  std::optional<std::string> stats;
  for (int i = 0; i < 100 && !(stats && stats->find("\"ok\":true") != std::string::npos); ++i) {
    LineClient c(dir / "s.sock");
    stats = c.Ask(R"({"op":"stats"})", 2000);
    if (!stats || stats->find("\"ok\":true") == std::string::npos) testing::WaitMs(50);
  }
  REQUIRE(stats);
  CHECK(stats->find("\"ok\":true") != std::string::npos);
  CHECK(stats->find("\"pending\":0") != std::string::npos);
  CHECK(d.Running());
  // Memory stayed bounded: RSS well under 64 MiB after all of it.
  std::string status = testing::ReadFile("/proc/" + std::to_string(d.pid()) + "/status");
  size_t at = status.find("VmRSS:");
  REQUIRE(at != std::string::npos);
  long rss_kb = std::stol(status.substr(at + 6));
  MESSAGE("RSS after hostile input: " << rss_kb << " KiB");
  CHECK(rss_kb < 64 * 1024);
}

}  // namespace
}  // namespace outboxd
