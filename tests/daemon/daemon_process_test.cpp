// outboxd as a process: every provider end to end against the simulator,
// acknowledged means durable under kill -9, systemd readiness and socket
// activation, SIGHUP reload, outboxctl and its exit codes, log hygiene.
#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <set>

#include "tests/daemon/process_util.h"
#include "tests/sim/sim_process.h"

namespace outboxd {
namespace {

using testing::DaemonProcess;
using testing::LineClient;
using testing::SimProcess;
using testing::TempDir;

int64_t IdOf(const std::string& reply) {
  rapidjson::Document d;
  d.Parse(reply.c_str());
  REQUIRE_MESSAGE((!d.HasParseError() && d["ok"].GetBool()), reply);
  return d["id"].GetInt64();
}

TEST_CASE("every provider type delivers end to end, exactly as its API expects") {
  auto sim = SimProcess::Start();
  REQUIRE(sim);
  TempDir dir;
  testing::WriteFile(dir / "c.toml", testing::AllProvidersConfig(dir.path(), sim->base_url()));
  DaemonProcess d;
  REQUIRE(d.Start({"-c", dir / "c.toml"}, dir / "log"));
  REQUIRE_MESSAGE(d.WaitReady(dir / "s.sock"), d.Log());
  LineClient c(dir / "s.sock");
  std::vector<std::pair<std::string, std::string>> events = {
      {"moost", R"({"pushNotificationId":"0123456789abcdefABCDEF01","actionQualifier":"DISMISS"})"},
      {"novu",
       R"({"subscriberId":"sub-1","messageId":"msg-1","type":"primary","status":"done","payload":{"k":"v"}})"},
      {"moengage", R"({"recommendationId":"reco-42"})"},
      {"moengage",
       R"({"type":"event","customer_id":"c-1","actions":[{"action":"tapped","attributes":{"screen":"home"}}]})"},
      {"ci",
       R"({"TrackingId":"7c9e6679-7425-40de-944b-e07fc1f90ae7","DeviceToken":"tok","PushNotificationStatus":1})"},
      {"beams", R"({"event":"open","publishId":"pub-1","deviceId":"dev-1"})"},
      {"hook", R"({"anything":[1,2,3]})"},
  };
  std::vector<int64_t> ids;
  for (const auto& [provider, event] : events) {
    auto r = c.Ask(R"({"op":"enqueue","provider":")" + provider + R"(","event":)" + event + "}");
    REQUIRE(r);
    ids.push_back(IdOf(*r));
  }
  bool all = testing::WaitForStats(dir / "s.sock", [](const rapidjson::Document& s) {
    int64_t delivered = 0;
    for (const auto& m : s["providers"].GetObject()) delivered += m.value["delivered"].GetInt64();
    return delivered == 7;
  });
  CHECK_MESSAGE(all, d.Log());
  rapidjson::Document reqs;
  reqs.Parse(sim->Requests().c_str());
  std::set<std::string> seen;
  for (const auto& r : reqs["requests"].GetArray()) {
    seen.insert(r["provider"].GetString());
    std::string where = std::string(r["provider"].GetString()) + " " + r["path"].GetString();
    std::string first = r["violations"].Empty() ? "" : r["violations"][0].GetString();
    CHECK_MESSAGE(r["violations"].Empty(), where << ": " << first);
  }
  CHECK(seen.size() == 6);
  // The recommendation answer is kept, readable by event id.
  auto g = c.Ask(R"({"op":"get","id":)" + std::to_string(ids[2]) + "}");
  REQUIRE(g);
  rapidjson::Document gd;
  gd.Parse(g->c_str());
  REQUIRE(gd["event"].HasMember("response"));
  CHECK(std::string(gd["event"]["response"].GetString()).find("reco-42") != std::string::npos);
  // No configured secret reaches the log.
  d.Kill(SIGTERM);
  std::string log = d.Log();
  for (const char* secret :
       {"moost-secret", "novu-key", "moe-key", "moe-data-key", "hook-token-secret"}) {
    CHECK_MESSAGE(log.find(secret) == std::string::npos, "secret in log: " << secret);
  }
}

TEST_CASE("every acknowledged event survives kill -9 right after its reply") {
  TempDir dir;
  testing::WriteFile(dir / "c.toml", "[store]\npath = \"" + dir.path() +
                                         "/outbox.db\"\n[ipc]\nsocket = \"" + dir.path() +
                                         "/s.sock\"\n[providers.hook]\ntype = \"webhook\"\n"
                                         "url = \"http://127.0.0.1:9/\"\n");
  std::map<int64_t, std::string> acked;
  for (int round = 0; round < 3; ++round) {
    DaemonProcess d;
    REQUIRE(d.Start({"-c", dir / "c.toml"}, dir / "log"));
    REQUIRE_MESSAGE(d.WaitReady(dir / "s.sock"), d.Log());
    LineClient c(dir / "s.sock");
    c.Ask(R"({"op":"pause","provider":"hook"})");
    std::string batch;
    std::vector<std::string> bodies;
    for (int i = 0; i < 200; ++i) {
      std::string body =
          "{\"round\":" + std::to_string(round) + ",\"i\":" + std::to_string(i) + "}";
      bodies.push_back(body);
      batch += R"({"op":"enqueue","provider":"hook","event":)" + body + "}\n";
    }
    REQUIRE(c.Send(batch));
    for (int i = 0; i < 200; ++i) {
      auto r = c.ReadLine();
      REQUIRE(r);
      acked[IdOf(*r)] = bodies[static_cast<size_t>(i)];
    }
    d.Kill(SIGKILL);  // right after the last reply
  }
  DaemonProcess d;
  REQUIRE(d.Start({"-c", dir / "c.toml"}, dir / "log"));
  REQUIRE(d.WaitReady(dir / "s.sock"));
  LineClient c(dir / "s.sock");
  for (const auto& entry : acked) {
    int64_t id = entry.first;
    const std::string& body = entry.second;
    auto r = c.Ask(R"({"op":"get","id":)" + std::to_string(id) + "}");
    REQUIRE(r);
    rapidjson::Document g;
    g.Parse(r->c_str());
    REQUIRE_MESSAGE(g["ok"].GetBool(), "acknowledged id " << id << " lost");
    CHECK(std::string(g["event"]["body"].GetString()) == body);
  }
  CHECK(acked.size() == 600);
}

// A datagram socket standing in for systemd's NOTIFY_SOCKET.
struct NotifySocket {
  explicit NotifySocket(const std::string& path) : path(path) {
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  ~NotifySocket() { close(fd); }
  // Collects messages until one contains `what` or timeout.
  bool WaitFor(const std::string& what, int timeout_ms = 10000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      for (const auto& m : messages) {
        if (m.find(what) != std::string::npos) return true;
      }
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 50) > 0) {
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n > 0) messages.emplace_back(buf, static_cast<size_t>(n));
      }
    }
    return false;
  }
  std::string path;
  int fd;
  std::vector<std::string> messages;
};

TEST_CASE("readiness, status, watchdog and stopping reach NOTIFY_SOCKET") {
  TempDir dir;
  NotifySocket notify(dir / "notify");
  testing::WriteFile(dir / "c.toml", "[store]\npath = \"" + dir.path() +
                                         "/outbox.db\"\n[ipc]\nsocket = \"" + dir.path() +
                                         "/s.sock\"\n[providers.hook]\ntype = \"webhook\"\n"
                                         "url = \"http://127.0.0.1:9/\"\n");
  DaemonProcess d;
  REQUIRE(d.Start({"-c", dir / "c.toml"}, dir / "log",
                  {{"NOTIFY_SOCKET", notify.path}, {"WATCHDOG_USEC", "200000"}}));
  CHECK(notify.WaitFor("READY=1"));
  // Ready means the socket is bound.
  LineClient c(dir / "s.sock");
  CHECK(c.connected());
  CHECK(notify.WaitFor("STATUS="));
  CHECK(notify.WaitFor("WATCHDOG=1"));
  d.Signal(SIGTERM);
  CHECK(notify.WaitFor("STOPPING=1"));
  int status = d.Wait(10000);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  bool status_has_lanes = false;
  for (const auto& m : notify.messages) {
    if (m.find("STATUS=") != std::string::npos && m.find("hook") != std::string::npos)
      status_has_lanes = true;
  }
  CHECK(status_has_lanes);
}

TEST_CASE("socket activation: the socket systemd passes is served") {
  std::string out;
  if (testing::RunCommand({"sh", "-c", "command -v systemd-socket-activate"}, &out) != 0) {
    FAIL("systemd-socket-activate is not installed (Debian package systemd)");
  }
  TempDir dir;
  testing::WriteFile(dir / "c.toml", "[store]\npath = \"" + dir.path() +
                                         "/outbox.db\"\n[ipc]\nsocket = \"" + dir.path() +
                                         "/unused.sock\"\n");
  pid_t pid = fork();
  if (pid == 0) {
    int log = open((dir / "log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(log, STDERR_FILENO);
    dup2(log, STDOUT_FILENO);
    std::string sock = dir / "activated.sock";
    std::string bin = DaemonProcess::Binary();
    std::string cfg = dir / "c.toml";
    execlp("systemd-socket-activate", "systemd-socket-activate", "-l", sock.c_str(), bin.c_str(),
           "-c", cfg.c_str(), nullptr);
    _exit(127);
  }
  // The socket exists before outboxd runs; the first connection starts it.
  LineClient c;
  for (int i = 0; i < 200 && !c.Connect(dir / "activated.sock"); ++i) testing::WaitMs(10);
  REQUIRE(c.connected());
  auto r = c.Ask(R"({"op":"ping"})");
  REQUIRE(r);
  CHECK(r->find("\"ok\":true") != std::string::npos);
  kill(pid, SIGTERM);
  int status;
  waitpid(pid, &status, 0);
  CHECK(testing::ReadFile(dir / "log").find("socket passed by systemd") != std::string::npos);
  CHECK(access((dir / "unused.sock").c_str(), F_OK) != 0);
}

TEST_CASE("SIGHUP reloads a rate limit; a bad file keeps the running one") {
  TempDir dir;
  auto config = [&](const std::string& rate) {
    return "[store]\npath = \"" + dir.path() + "/outbox.db\"\n[ipc]\nsocket = \"" + dir.path() +
           "/s.sock\"\n[providers.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n"
           "rate_limit = \"" +
           rate + "\"\n";
  };
  testing::WriteFile(dir / "c.toml", config("10/s"));
  DaemonProcess d;
  REQUIRE(d.Start({"-c", dir / "c.toml"}, dir / "log"));
  REQUIRE(d.WaitReady(dir / "s.sock"));
  auto rate = [&]() {
    LineClient c(dir / "s.sock");
    auto r = c.Ask(R"({"op":"stats"})");
    rapidjson::Document s;
    s.Parse(r->c_str());
    return std::string(s["providers"]["hook"]["rate_limit"].GetString());
  };
  CHECK(rate() == "10/s");
  LineClient held(dir / "s.sock");  // a connection that lives across the reload
  testing::WriteFile(dir / "c.toml", config("20/min"));
  d.Signal(SIGHUP);
  bool changed = false;
  for (int i = 0; i < 200 && !changed; ++i) {
    changed = rate() == "20/min";
    if (!changed) testing::WaitMs(10);
  }
  CHECK(changed);
  CHECK(held.Ask(R"({"op":"ping"})").has_value());
  testing::WriteFile(dir / "c.toml", config("lots"));
  d.Signal(SIGHUP);
  bool refused = false;
  for (int i = 0; i < 200 && !refused; ++i) {
    refused = d.Log().find("reload refused") != std::string::npos;
    if (!refused) testing::WaitMs(10);
  }
  CHECK(refused);
  CHECK(d.Log().find("rate_limit") != std::string::npos);
  CHECK(rate() == "20/min");
  CHECK(d.Running());
}

TEST_CASE("configuration errors stop the start with file, key and reason") {
  TempDir dir;
  testing::WriteFile(dir / "bad.toml", "[store]\nmax_size = \"huge\"\n");
  std::string out;
  int rc = testing::RunCommand({DaemonProcess::Binary(), "-c", dir / "bad.toml"}, &out);
  CHECK(rc == 2);
  CHECK(out.find(dir / "bad.toml") != std::string::npos);
  CHECK(out.find("store.max_size") != std::string::npos);
  rc = testing::RunCommand({DaemonProcess::Binary(), "-c", dir / "bad.toml", "--check-config"},
                           &out);
  CHECK(rc == 2);
  testing::WriteFile(dir / "good.toml", "[store]\nmax_size = \"1MiB\"\n");
  rc = testing::RunCommand({DaemonProcess::Binary(), "-c", dir / "good.toml", "--check-config"},
                           &out);
  CHECK(rc == 0);
  CHECK(out.find("ok") != std::string::npos);
}

TEST_CASE("outboxctl drives a running daemon, with its exit codes") {
  TempDir dir;
  testing::WriteFile(dir / "c.toml", "[store]\npath = \"" + dir.path() +
                                         "/outbox.db\"\n[ipc]\nsocket = \"" + dir.path() +
                                         "/s.sock\"\n[providers.hook]\ntype = \"webhook\"\n"
                                         "url = \"http://127.0.0.1:9/\"\n");
  DaemonProcess d;
  REQUIRE(d.Start({"-c", dir / "c.toml"}, dir / "log"));
  REQUIRE(d.WaitReady(dir / "s.sock"));
  std::string ctl = DaemonProcess::Binary("outboxctl");
  std::string sock = dir / "s.sock";
  std::string out;
  CHECK(testing::RunCommand({ctl, "-s", sock, "ping"}, &out) == 0);
  CHECK(out.find("is up") != std::string::npos);
  CHECK(testing::RunCommand({ctl, "-s", sock, "pause", "hook"}, &out) == 0);
  CHECK(testing::RunCommand({ctl, "-s", sock, "enqueue", "hook", R"({"a":1})", "--key", "k1"},
                            &out) == 0);
  CHECK(out == "1\n");
  CHECK(testing::RunCommand({ctl, "-s", sock, "enqueue", "hook", R"({"a":2})", "--key", "k1"},
                            &out) == 0);
  CHECK(out == "1 (duplicate)\n");
  std::string lines;
  for (int i = 0; i < 2500; ++i) lines += "{\"i\":" + std::to_string(i) + "}\n";
  CHECK(testing::RunCommand({ctl, "-s", sock, "enqueue", "hook", "-"}, &out, lines) == 0);
  CHECK(out.find("2500 events enqueued") != std::string::npos);
  CHECK(testing::RunCommand({ctl, "-s", sock, "enqueue", "hook", "-"}, &out,
                            "{\"ok\":1}\nnot json\n") == 2);
  CHECK(out.find("line 2") != std::string::npos);
  CHECK(testing::RunCommand({ctl, "-s", sock, "get", "2"}, &out) == 0);
  CHECK(out.find("state:           pending") != std::string::npos);
  CHECK(testing::RunCommand({ctl, "-s", sock, "--json", "get", "2"}, &out) == 0);
  CHECK(out.find("\"ok\":true") != std::string::npos);
  CHECK(testing::RunCommand({ctl, "-s", sock, "stats"}, &out) == 0);
  CHECK(out.find("hook") != std::string::npos);
  CHECK(out.find("paused") != std::string::npos);
  CHECK(out.find("2501") != std::string::npos);
  CHECK(testing::RunCommand({ctl, "-s", sock, "--json", "list", "--limit", "3"}, &out) == 0);
  CHECK(std::count(out.begin(), out.end(), '\n') == 3);
  CHECK(testing::RunCommand({ctl, "-s", sock, "purge", "--ids", "1,2"}, &out) == 0);
  CHECK(out == "2 events purged\n");
  CHECK(testing::RunCommand({ctl, "-s", sock, "retry", "--provider", "hook"}, &out) == 0);
  CHECK(testing::RunCommand({ctl, "-s", sock, "metrics"}, &out) == 0);
  CHECK(out.find("outboxd_events{provider=\"hook\",state=\"pending\"} 2499") != std::string::npos);
  CHECK(testing::RunCommand({ctl, "-s", sock, "resume", "hook"}, &out) == 0);
  // 1: the daemon answered an error.
  CHECK(testing::RunCommand({ctl, "-s", sock, "get", "999999"}, &out) == 1);
  CHECK(out.find("not_found") != std::string::npos);
  CHECK(testing::RunCommand({ctl, "-s", sock, "pause", "nope"}, &out) == 1);
  // 2: usage.
  CHECK(testing::RunCommand({ctl, "-s", sock, "frobnicate"}, &out) == 2);
  CHECK(testing::RunCommand({ctl, "-s", sock, "get"}, &out) == 2);
  CHECK(testing::RunCommand({ctl, "-s", sock, "retry"}, &out) == 2);
  CHECK(testing::RunCommand({ctl, "get", "--help"}, &out) == 0);
  CHECK(out.find("usage: outboxctl") != std::string::npos);
  // 3: no daemon there.
  CHECK(testing::RunCommand({ctl, "-s", dir / "nothing.sock", "ping"}, &out) == 3);
  CHECK(out.find("nothing.sock") != std::string::npos);
}

}  // namespace
}  // namespace outboxd

namespace outboxd {
namespace {

TEST_CASE("a mixed run over all six providers with faults on: everything delivered, nothing dead") {
  auto sim = testing::SimProcess::Start();
  REQUIRE(sim);
  // Transient faults only: refused halfway, 5xx, slow answers, and MoEngage's
  // limit low enough to be hit.
  REQUIRE(sim->Config(
      R"({"faults":{"*":{"error_rate":0.2,"reset_rate":0.1}},"moengage_limit":15,"moengage_window_s":2})"));
  testing::TempDir dir;
  testing::WriteFile(dir / "c.toml", testing::AllProvidersConfig(dir.path(), sim->base_url()));
  testing::DaemonProcess d;
  REQUIRE(d.Start({"-c", dir / "c.toml"}, dir / "log"));
  REQUIRE(d.WaitReady(dir / "s.sock"));
  testing::LineClient c(dir / "s.sock");
  auto batch = [&](const std::string& provider, const std::string& event, int n) {
    std::string events;
    for (int i = 0; i < n; ++i) events += (i ? "," : "") + event;
    auto r =
        c.Ask(R"({"op":"enqueue","provider":")" + provider + R"(","events":[)" + events + "]}");
    REQUIRE(r);
    CHECK_MESSAGE(r->find("\"ok\":true") != std::string::npos, *r);
  };
  batch("moost", R"({"pushNotificationId":"n1","actionQualifier":"PRIMARY"})", 10);
  batch("novu", R"({"subscriberId":"s","messageId":"m","type":"secondary","status":"pending"})",
        10);
  batch("moengage", R"({"recommendationId":"reco-1"})", 30);
  batch(
      "ci",
      R"({"TrackingId":"7c9e6679-7425-40de-944b-e07fc1f90ae7","DeviceToken":"t","PushNotificationStatus":0})",
      10);
  batch("beams", R"({"event":"delivery","publishId":"p","deviceId":"d","hasData":false})", 10);
  batch("hook", R"({"x":1})", 10);
  bool done = testing::WaitForStats(
      dir / "s.sock",
      [](const rapidjson::Document& s) {
        int64_t delivered = 0, dead = 0;
        for (const auto& m : s["providers"].GetObject()) {
          delivered += m.value["delivered"].GetInt64();
          dead += m.value["dead"].GetInt64();
        }
        return delivered + dead == 80;
      },
      90000);
  REQUIRE_MESSAGE(done, d.Log());
  auto s = c.Ask(R"({"op":"stats"})");
  rapidjson::Document st;
  st.Parse(s->c_str());
  for (const auto& m : st["providers"].GetObject()) {
    CHECK_MESSAGE(m.value["dead"].GetInt64() == 0,
                  m.name.GetString() << ": " << m.value["last_error"].GetString());
  }
  rapidjson::Document reqs;
  reqs.Parse(sim->Requests().c_str());
  // The simulator's MoEngage limit (15 per 2 s) is far below the lane's
  // 1000/min, so requests already in flight when the quota ran out may pass
  // it; everything else about every request must be as documented.
  int violations = 0, over_limit = 0;
  for (const auto& r : reqs["requests"].GetArray()) {
    for (const auto& v : r["violations"].GetArray()) {
      std::string what = v.GetString();
      if (what.find("over the 1000/min limit") != std::string::npos) {
        ++over_limit;
        continue;
      }
      ++violations;
      std::string provider = r["provider"].GetString();
      MESSAGE(provider << ": " << what);
    }
  }
  MESSAGE("MoEngage requests past the simulator's quota while in flight: " << over_limit);
  CHECK(over_limit <= 8 * 4);
  CHECK(violations == 0);
}

TEST_CASE("the systemd units verify and the service is hardened to 2.0 or better") {
  std::string out;
  if (testing::RunCommand({"sh", "-c", "command -v systemd-analyze"}, &out) != 0) {
    FAIL("systemd-analyze is not installed (Debian package systemd)");
  }
  testing::TempDir dir;
  std::string service =
      testing::ReadFile(std::string(OUTBOXD_SOURCE_DIR) + "/systemd/outboxd.service");
  // Verify against the binary that was built, where the unit will find it.
  size_t at = service.find("/usr/sbin/outboxd");
  REQUIRE(at != std::string::npos);
  service.replace(at, std::strlen("/usr/sbin/outboxd"), testing::DaemonProcess::Binary());
  testing::WriteFile(dir / "outboxd.service", service);
  testing::WriteFile(dir / "outboxd.socket", testing::ReadFile(std::string(OUTBOXD_SOURCE_DIR) +
                                                               "/systemd/outboxd.socket"));
  int rc = testing::RunCommand(
      {"systemd-analyze", "verify", "--man=no", dir / "outboxd.service", dir / "outboxd.socket"},
      &out);
  CHECK_MESSAGE(rc == 0, out);
  rc = testing::RunCommand(
      {"systemd-analyze", "security", "--offline=yes", "--no-pager", dir / "outboxd.service"},
      &out);
  size_t level = out.find("Overall exposure level for outboxd.service: ");
  REQUIRE_MESSAGE(level != std::string::npos, out);
  double score =
      std::stod(out.substr(level + std::strlen("Overall exposure level for outboxd.service: ")));
  MESSAGE("systemd-analyze security: " << score);
  CHECK(score <= 2.0);
}

}  // namespace
}  // namespace outboxd

namespace outboxd {
namespace {

TEST_CASE("metrics pass promtool and reach the node_exporter textfile") {
  std::string out;
  if (testing::RunCommand({"sh", "-c", "command -v promtool"}, &out) != 0) {
    FAIL("promtool is not installed (Debian package prometheus)");
  }
  auto sim = testing::SimProcess::Start();
  REQUIRE(sim);
  testing::TempDir dir;
  testing::WriteFile(dir / "c.toml",
                     testing::AllProvidersConfig(dir.path(), sim->base_url(),
                                                 "[metrics]\ntextfile = \"" + dir.path() +
                                                     "/outboxd.prom\"\ninterval = \"200ms\"\n"));
  testing::DaemonProcess d;
  REQUIRE(d.Start({"-c", dir / "c.toml"}, dir / "log"));
  REQUIRE(d.WaitReady(dir / "s.sock"));
  testing::LineClient c(dir / "s.sock");
  c.Ask(R"({"op":"enqueue","provider":"hook","event":{"a":1}})");
  c.Ask(
      R"({"op":"enqueue","provider":"novu","event":{"subscriberId":"s","messageId":"m","type":"primary","status":"done"}})");
  c.Ask(R"({"op":"enqueue","provider":"novu","event":{"bad":1}})");
  REQUIRE(testing::WaitForStats(dir / "s.sock", [](const rapidjson::Document& s) {
    return testing::StatOf(s, "hook", "delivered") == 1 &&
           testing::StatOf(s, "novu", "delivered") == 1;
  }));
  REQUIRE(testing::RunCommand(
              {testing::DaemonProcess::Binary("outboxctl"), "-s", dir / "s.sock", "metrics"},
              &out) == 0);
  std::string text = out;
  CHECK(text.find("outboxd_requests_total{provider=\"hook\",status=\"200\"} 1") !=
        std::string::npos);
  CHECK(text.find("outboxd_delivered_total{provider=\"novu\"} 1") != std::string::npos);
  CHECK(text.find("outboxd_rejected_total{reason=\"invalid_event\"} 1") != std::string::npos);
  int rc = testing::RunCommand({"promtool", "check", "metrics"}, &out, text);
  CHECK_MESSAGE(rc == 0, out);
  bool written = false;
  for (int i = 0; i < 100 && !written; ++i) {
    written = testing::ReadFile(dir / "outboxd.prom")
                  .find("outboxd_delivered_total{provider=\"novu\"} 1") != std::string::npos;
    if (!written) testing::WaitMs(50);
  }
  CHECK(written);
}

}  // namespace
}  // namespace outboxd
