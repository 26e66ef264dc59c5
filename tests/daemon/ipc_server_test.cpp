// Protocol v1 through a real Unix socket: every op, every error code,
// pipelining, limits, and clients that misbehave.
#include "daemon/ipc_server.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "daemon/clock.h"
#include "daemon/service.h"
#include "store/store.h"
#include "tests/daemon/ipc_util.h"

namespace outboxd {
namespace {

using testing::Client;
using testing::ErrorCodeOf;
using testing::ParseReply;

struct Fixture {
  explicit Fixture(int64_t max_size = 64ll << 20, IpcOptions ipc = {}) {
    char tmpl[] = "/tmp/outboxd-ipc-XXXXXX";
    dir = mkdtemp(tmpl);
    store::Options so;
    so.path = dir + "/outbox.db";
    so.max_size_bytes = max_size;
    so.synchronous_full = false;
    REQUIRE(store::Store::Open(so, &store).ok());
    lanes.names.insert("echo");
    service = std::make_unique<Service>(store.get(), &lanes, &clock, ServiceOptions{100});
    service->SetProviders({{"echo", &echo}});
    server = std::make_unique<IpcServer>(ipc, service.get());
    std::string error;
    socket_path = dir + "/outboxd.sock";
    REQUIRE_MESSAGE(server->Listen(socket_path, 0660, &error), error);
  }
  ~Fixture() {
    server.reset();
    service.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
  std::string Ask(Client& c, const std::string& line) {
    c.Send(line + "\n", server.get());
    return c.ReadLine(server.get());
  }
  int64_t Count(store::State state) {
    std::map<std::string, store::ProviderStats> stats;
    REQUIRE(store->Stats(&stats).ok());
    return stats["echo"].count[static_cast<int>(state)];
  }

  std::string dir;
  std::string socket_path;
  FakeClock clock;
  testing::EchoProvider echo{"echo"};
  testing::RecordingLanes lanes;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<Service> service;
  std::unique_ptr<IpcServer> server;
};

TEST_CASE("ping answers ok with the version") {
  Fixture f;
  Client c(f.socket_path);
  REQUIRE(c.connected());
  auto d = ParseReply(f.Ask(c, R"({"op":"ping"})"));
  CHECK(d["ok"].GetBool());
  CHECK(std::string(d["version"].GetString()) == OUTBOXD_VERSION);
}

TEST_CASE("the socket file gets the configured mode") {
  Fixture f;
  struct stat st;
  REQUIRE(stat(f.socket_path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);
  CHECK(S_ISSOCK(st.st_mode));
}

TEST_CASE("an enqueued event is stored and readable with get") {
  Fixture f;
  Client c(f.socket_path);
  auto d = ParseReply(f.Ask(c, R"({"op":"enqueue","provider":"echo","event":{"msg":"hi"}})"));
  REQUIRE(d["ok"].GetBool());
  CHECK_FALSE(d["duplicate"].GetBool());
  int64_t id = d["id"].GetInt64();
  CHECK(f.lanes.notified == std::vector<std::string>{"echo"});
  auto g = ParseReply(f.Ask(c, R"({"op":"get","id":)" + std::to_string(id) + "}"));
  REQUIRE(g["ok"].GetBool());
  CHECK(std::string(g["event"]["state"].GetString()) == "pending");
  CHECK(std::string(g["event"]["provider"].GetString()) == "echo");
  CHECK(std::string(g["event"]["body"].GetString()) == R"({"msg":"hi"})");
  CHECK(g["event"]["attempts"].GetInt() == 0);
}

TEST_CASE("the same key answers the first id as a duplicate and stores nothing") {
  Fixture f;
  Client c(f.socket_path);
  auto a =
      ParseReply(f.Ask(c, R"({"op":"enqueue","provider":"echo","event":{"msg":"a"},"key":"k1"})"));
  auto b =
      ParseReply(f.Ask(c, R"({"op":"enqueue","provider":"echo","event":{"msg":"b"},"key":"k1"})"));
  REQUIRE(a["ok"].GetBool());
  REQUIRE(b["ok"].GetBool());
  CHECK(b["duplicate"].GetBool());
  CHECK(a["id"].GetInt64() == b["id"].GetInt64());
  CHECK(f.Count(store::State::kPending) == 1);
}

TEST_CASE("a batch is all or nothing and names the bad event's field") {
  Fixture f;
  Client c(f.socket_path);
  std::string bad = f.Ask(
      c, R"({"op":"enqueue","provider":"echo","events":[{"msg":"a"},{"msg":""},{"msg":"c"}]})");
  CHECK(ErrorCodeOf(bad) == "invalid_event");
  CHECK(bad.find("events[1].msg") != std::string::npos);
  CHECK(f.Count(store::State::kPending) == 0);
  auto ok = ParseReply(
      f.Ask(c, R"({"op":"enqueue","provider":"echo","events":[{"msg":"a"},{"msg":"b"}]})"));
  REQUIRE(ok["ok"].GetBool());
  CHECK(ok["ids"].Size() == 2);
  CHECK(ok["ids"][1].GetInt64() == ok["ids"][0].GetInt64() + 1);
  CHECK(f.Count(store::State::kPending) == 2);
}

TEST_CASE("each error code comes with a specific message") {
  Fixture f;
  Client c(f.socket_path);
  SUBCASE("bad_request: not JSON") { CHECK(ErrorCodeOf(f.Ask(c, "{nope")) == "bad_request"); }
  SUBCASE("bad_request: no op") { CHECK(ErrorCodeOf(f.Ask(c, R"({"x":1})")) == "bad_request"); }
  SUBCASE("bad_request: not an object") { CHECK(ErrorCodeOf(f.Ask(c, "[1]")) == "bad_request"); }
  SUBCASE("unknown_op") {
    std::string r = f.Ask(c, R"({"op":"launch"})");
    CHECK(ErrorCodeOf(r) == "unknown_op");
    CHECK(r.find("launch") != std::string::npos);
  }
  SUBCASE("unknown_provider") {
    std::string r = f.Ask(c, R"({"op":"enqueue","provider":"nope","event":{"msg":"a"}})");
    CHECK(ErrorCodeOf(r) == "unknown_provider");
    CHECK(r.find("nope") != std::string::npos);
  }
  SUBCASE("invalid_event") {
    std::string r = f.Ask(c, R"({"op":"enqueue","provider":"echo","event":{"n":1}})");
    CHECK(ErrorCodeOf(r) == "invalid_event");
    CHECK(r.find("msg") != std::string::npos);
  }
  SUBCASE("not_found") { CHECK(ErrorCodeOf(f.Ask(c, R"({"op":"get","id":999})")) == "not_found"); }
  SUBCASE("shutting_down") {
    f.service->SetShuttingDown();
    CHECK(ErrorCodeOf(f.Ask(c, R"({"op":"enqueue","provider":"echo","event":{"msg":"a"}})")) ==
          "shutting_down");
    CHECK(ErrorCodeOf(f.Ask(c, R"({"op":"ping"})")) == "");
  }
  SUBCASE("bad_request: batch over the limit") {
    std::string events;
    for (int i = 0; i < 101; ++i) events += std::string(i ? "," : "") + R"({"msg":"x"})";
    std::string r = f.Ask(c, R"({"op":"enqueue","provider":"echo","events":[)" + events + "]}");
    CHECK(ErrorCodeOf(r) == "bad_request");
    CHECK(r.find("100") != std::string::npos);
  }
  CHECK(f.Count(store::State::kPending) == 0);
}

TEST_CASE("hostile input is refused and stores nothing") {
  Fixture f;
  Client c(f.socket_path);
  SUBCASE("invalid UTF-8") {
    CHECK(ErrorCodeOf(f.Ask(
              c, "{\"op\":\"enqueue\",\"provider\":\"echo\",\"event\":{\"msg\":\"\xff\xfe\"}}")) ==
          "bad_request");
  }
  SUBCASE("a NUL byte") {
    std::string line = R"({"op":"ping"})";
    line.insert(5, 1, '\0');
    CHECK(ErrorCodeOf(f.Ask(c, line)) == "bad_request");
  }
  SUBCASE("10,000-deep nesting") {
    std::string deep = R"({"op":"enqueue","provider":"echo","event":{"msg":"a","x":)" +
                       std::string(10000, '[') + std::string(10000, ']') + "}}";
    std::string r = f.Ask(c, deep);
    CHECK(ErrorCodeOf(r) == "bad_request");
    CHECK(r.find("deeper") != std::string::npos);
  }
  SUBCASE("duplicated keys") {
    std::string r = f.Ask(c, R"({"op":"enqueue","provider":"echo","event":{"msg":"a","msg":"b"}})");
    CHECK(ErrorCodeOf(r) == "bad_request");
    CHECK(r.find("duplicated key") != std::string::npos);
  }
  SUBCASE("a huge number") {
    std::string r =
        f.Ask(c, R"({"op":"enqueue","provider":"echo","event":{"msg":"a","n":1e999999}})");
    CHECK(ErrorCodeOf(r) != "");
  }
  CHECK(f.Count(store::State::kPending) == 0);
  // The daemon is still there.
  CHECK(ErrorCodeOf(f.Ask(c, R"({"op":"ping"})")) == "");
}

TEST_CASE("pipelined requests are answered in order") {
  Fixture f;
  Client c(f.socket_path);
  std::string batch;
  for (int i = 0; i < 200; ++i) {
    if (i % 3 == 0)
      batch += R"({"op":"ping"})"
               "\n";
    else
      batch +=
          R"({"op":"enqueue","provider":"echo","event":{"msg":"m)" + std::to_string(i) + "\"}}\n";
  }
  c.Send(batch, f.server.get());
  int64_t last_id = 0;
  for (int i = 0; i < 200; ++i) {
    auto d = ParseReply(c.ReadLine(f.server.get()));
    REQUIRE(d["ok"].GetBool());
    if (i % 3 == 0) {
      CHECK(d.HasMember("version"));
    } else {
      REQUIRE(d.HasMember("id"));
      CHECK(d["id"].GetInt64() > last_id);
      last_id = d["id"].GetInt64();
    }
  }
  CHECK(f.Count(store::State::kPending) == 133);
}

TEST_CASE("a get pipelined right after its enqueue sees the event") {
  Fixture f;
  Client c(f.socket_path);
  c.Send(R"({"op":"enqueue","provider":"echo","event":{"msg":"a"}})"
         "\n"
         R"({"op":"get","id":1})"
         "\n",
         f.server.get());
  auto a = ParseReply(c.ReadLine(f.server.get()));
  auto g = ParseReply(c.ReadLine(f.server.get()));
  REQUIRE(a["ok"].GetBool());
  REQUIRE(g["ok"].GetBool());
  CHECK(g["event"]["id"].GetInt64() == a["id"].GetInt64());
}

TEST_CASE("a line over the limit gets bad_request and the connection closes") {
  IpcOptions ipc;
  ipc.max_request_bytes = 1 << 20;
  Fixture f(64ll << 20, ipc);
  Client c(f.socket_path);
  std::string huge = R"({"op":"enqueue","provider":"echo","event":{"msg":")" +
                     std::string(2 << 20, 'x') + "\"}}\n";
  c.Send(huge, f.server.get());
  std::string r = c.ReadLine(f.server.get());
  CHECK(ErrorCodeOf(r) == "bad_request");
  CHECK(r.find("longer than") != std::string::npos);
  CHECK(c.WaitClosed(f.server.get()));
  CHECK(f.Count(store::State::kPending) == 0);
  Client other(f.socket_path);
  CHECK(ErrorCodeOf(f.Ask(other, R"({"op":"ping"})")) == "");
}

TEST_CASE("a client that never reads cannot stall others or grow memory without bound") {
  IpcOptions ipc;
  ipc.max_reply_backlog = 64 * 1024;
  Fixture f(64ll << 20, ipc);
  Client greedy(f.socket_path);
  // Far more replies than the socket buffers and the backlog hold.
  std::string pings;
  for (int i = 0; i < 2000; ++i)
    pings += R"({"op":"ping"})"
             "\n";
  for (int round = 0; round < 50; ++round) {
    ssize_t n = send(greedy.fd(), pings.data(), pings.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    testing::Pump(f.server.get(), 0);
    if (n <= 0) break;
  }
  Client polite(f.socket_path);
  CHECK(ErrorCodeOf(f.Ask(polite, R"({"op":"ping"})")) == "");
  auto d = ParseReply(f.Ask(polite, R"({"op":"enqueue","provider":"echo","event":{"msg":"a"}})"));
  CHECK(d["ok"].GetBool());
}

TEST_CASE("half a line then a disconnect stores nothing") {
  Fixture f;
  {
    Client c(f.socket_path);
    c.Send(R"({"op":"enqueue","provider":"echo","event":{"msg":)", f.server.get());
    testing::Pump(f.server.get(), 0);
  }
  for (int i = 0; i < 5; ++i) testing::Pump(f.server.get(), 5);
  CHECK(f.server->connection_count() == 0);
  CHECK(f.Count(store::State::kPending) == 0);
}

TEST_CASE("connections beyond the limit are refused with an error") {
  IpcOptions ipc;
  ipc.max_connections = 3;
  Fixture f(64ll << 20, ipc);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<Client>(f.socket_path));
    testing::Pump(f.server.get(), 5);
  }
  CHECK(f.server->connection_count() == 3);
  Client extra(f.socket_path);
  std::string r = extra.ReadLine(f.server.get());
  CHECK(ErrorCodeOf(r) == "bad_request");
  CHECK(r.find("too many connections") != std::string::npos);
  CHECK(ErrorCodeOf(f.Ask(*clients[0], R"({"op":"ping"})")) == "");
}

TEST_CASE("when the store is full enqueue answers queue_full and stores nothing") {
  Fixture f(256 * 1024);
  Client c(f.socket_path);
  std::string big(4000, 'x');
  std::string last;
  int stored = 0;
  for (int i = 0; i < 500; ++i) {
    last = f.Ask(c, R"({"op":"enqueue","provider":"echo","event":{"msg":")" + big + "\"}}");
    if (ErrorCodeOf(last) != "") break;
    ++stored;
  }
  CHECK(ErrorCodeOf(last) == "queue_full");
  CHECK(stored > 0);
  CHECK(f.Count(store::State::kPending) == stored);
  // A whole batch that does not fit is refused whole.
  std::string r = f.Ask(c, R"({"op":"enqueue","provider":"echo","events":[{"msg":")" + big +
                               R"("},{"msg":")" + big + "\"}]}");
  CHECK(ErrorCodeOf(r) == "queue_full");
  CHECK(f.Count(store::State::kPending) == stored);
  // Reads still work.
  CHECK(ErrorCodeOf(f.Ask(c, R"({"op":"stats"})")) == "");
}

TEST_CASE("list, retry, purge, pause, resume, stats and metrics") {
  Fixture f;
  Client c(f.socket_path);
  for (int i = 0; i < 5; ++i) {
    f.Ask(c, R"({"op":"enqueue","provider":"echo","event":{"msg":"m)" + std::to_string(i) + "\"}}");
  }
  auto l = ParseReply(f.Ask(c, R"({"op":"list","provider":"echo","limit":2,"after_id":1})"));
  REQUIRE(l["ok"].GetBool());
  REQUIRE(l["events"].Size() == 2);
  CHECK(l["events"][0]["id"].GetInt64() == 2);
  CHECK(l["events"][1]["id"].GetInt64() == 3);
  CHECK(ErrorCodeOf(f.Ask(c, R"({"op":"list","state":"lost"})")) == "bad_request");

  auto s = ParseReply(f.Ask(c, R"({"op":"stats"})"));
  REQUIRE(s["ok"].GetBool());
  CHECK(s["providers"]["echo"]["pending"].GetInt64() == 5);
  CHECK(std::string(s["providers"]["echo"]["state"].GetString()) == "active");

  CHECK(ErrorCodeOf(f.Ask(c, R"({"op":"pause","provider":"echo"})")) == "");
  CHECK(f.lanes.paused["echo"]);
  s = ParseReply(f.Ask(c, R"({"op":"stats"})"));
  CHECK(std::string(s["providers"]["echo"]["state"].GetString()) == "paused");
  CHECK(ErrorCodeOf(f.Ask(c, R"({"op":"resume","provider":"echo"})")) == "");
  CHECK_FALSE(f.lanes.paused["echo"]);
  CHECK(ErrorCodeOf(f.Ask(c, R"({"op":"pause","provider":"nope"})")) == "unknown_provider");

  CHECK(ErrorCodeOf(f.Ask(c, R"({"op":"purge"})")) == "bad_request");
  auto p = ParseReply(f.Ask(c, R"({"op":"purge","ids":[1,2]})"));
  CHECK(p["count"].GetInt64() == 2);
  CHECK(f.Count(store::State::kPending) == 3);
  auto r = ParseReply(f.Ask(c, R"({"op":"retry","provider":"echo"})"));
  CHECK(r["count"].GetInt64() == 0);  // nothing dead

  auto m = ParseReply(f.Ask(c, R"({"op":"metrics"})"));
  std::string text = m["text"].GetString();
  CHECK(text.find("outboxd_events{provider=\"echo\",state=\"pending\"} 3") != std::string::npos);
  CHECK(text.find("outboxd_enqueued_total 5") != std::string::npos);
  CHECK(text.find("outboxd_lane_paused{provider=\"echo\"} 0") != std::string::npos);
}

TEST_CASE("a live socket is never replaced, a stale one is") {
  Fixture f;
  IpcServer second(IpcOptions{}, f.service.get());
  std::string error;
  CHECK_FALSE(second.Listen(f.socket_path, 0660, &error));
  CHECK(error.find("in use") != std::string::npos);
  f.server->StopListening();
  // A socket file nobody listens on (left by a crash) is replaced.
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, f.socket_path.c_str(), sizeof(addr.sun_path) - 1);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  close(fd);
  CHECK(second.Listen(f.socket_path, 0660, &error));
}

}  // namespace
}  // namespace outboxd

namespace outboxd {
namespace {

TEST_CASE("ipc.allowed_uids refuses other users") {
  IpcOptions ipc;
  ipc.allowed_uids = {4242};
  Fixture f(64ll << 20, ipc);
  REQUIRE(chmod(f.dir.c_str(), 0755) == 0);
  REQUIRE(chmod(f.socket_path.c_str(), 0666) == 0);
  if (getuid() != 0) FAIL("needs root to connect as another user");
  pid_t pid = fork();
  if (pid == 0) {
    // Another user (nobody), not in the list.
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(10);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, f.socket_path.c_str(), sizeof(addr.sun_path) - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) _exit(11);
    std::string req = "{\"op\":\"ping\"}\n";
    (void)!write(fd, req.data(), req.size());
    char buf[512];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    std::string reply(buf, n > 0 ? static_cast<size_t>(n) : 0);
    _exit(reply.find("may not use outboxd") != std::string::npos ? 0 : 12);
  }
  int status = 0;
  for (int i = 0; i < 500; ++i) {
    testing::Pump(f.server.get(), 10);
    if (waitpid(pid, &status, WNOHANG) == pid) break;
  }
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(f.server->connections_refused() == 1);
  // The daemon's own user (root here) is still let in.
  Client c(f.socket_path);
  CHECK(ErrorCodeOf(f.Ask(c, R"({"op":"ping"})")) == "");
}

}  // namespace
}  // namespace outboxd
