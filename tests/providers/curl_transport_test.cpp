// The libcurl transport against the provider simulator: keep-alive,
// concurrency, timeouts, refused connections, body cap, TLS verification.
#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <set>

#include "providers/http.h"
#include "tests/common/daemon_process.h"
#include "tests/sim/sim_process.h"

namespace outboxd::providers {
namespace {

using testing::SimProcess;

// Runs the transport until `n` completions arrived or 10 s passed.
std::vector<HttpTransport::Completion> Drain(HttpTransport* t, size_t n) {
  std::vector<HttpTransport::Completion> done;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (done.size() < n && std::chrono::steady_clock::now() < deadline) {
    t->Wait({}, 100, &done);
  }
  return done;
}

HttpRequest Hook(const SimProcess& sim, const std::string& path = "/hook/a") {
  HttpRequest r;
  r.url = sim.base_url() + path;
  r.body = R"({"x":1})";
  r.headers = {{"Content-Type", "application/json"}};
  r.timeout_s = 5;
  return r;
}

TEST_CASE("many requests to one host share one kept-alive connection") {
  auto sim = SimProcess::Start();
  REQUIRE(sim);
  auto t = NewCurlTransport({});
  for (int i = 0; i < 20; ++i) {
    t->Start(static_cast<uint64_t>(i), Hook(*sim));
    auto done = Drain(t.get(), 1);
    REQUIRE(done.size() == 1);
    CHECK(done[0].response.status == 200);
  }
  rapidjson::Document d;
  d.Parse(sim->Requests().c_str());
  REQUIRE(d["requests"].Size() == 20);
  std::set<int> conns;
  for (const auto& r : d["requests"].GetArray()) conns.insert(r["conn"].GetInt());
  CHECK(conns.size() == 1);
}

TEST_CASE("concurrent requests complete under their own ids with headers captured") {
  auto sim = SimProcess::Start();
  REQUIRE(sim);
  auto t = NewCurlTransport({});
  for (uint64_t i = 1; i <= 10; ++i) t->Start(i, Hook(*sim, "/hook/" + std::to_string(i)));
  CHECK(t->InFlight() == 10);
  auto done = Drain(t.get(), 10);
  REQUIRE(done.size() == 10);
  std::set<uint64_t> ids;
  for (const auto& c : done) {
    ids.insert(c.id);
    CHECK(c.response.status == 200);
    REQUIRE(c.response.FindHeader("content-TYPE") != nullptr);
    CHECK(*c.response.FindHeader("Content-Type") == "application/json");
    CHECK(c.response.body == R"({"ok": true})");
  }
  CHECK(ids.size() == 10);
  CHECK(t->InFlight() == 0);
}

TEST_CASE("a hanging server times out, a closed port is refused, a reset is a reset") {
  auto sim = SimProcess::Start();
  REQUIRE(sim);
  auto t = NewCurlTransport({});
  REQUIRE(sim->Config(R"({"faults":{"webhook":{"hang":true}}})"));
  HttpRequest r = Hook(*sim);
  r.timeout_s = 0.3;
  auto start = std::chrono::steady_clock::now();
  t->Start(1, r);
  auto done = Drain(t.get(), 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].response.error == TransportError::kTimeout);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));

  REQUIRE(sim->Config(R"({"faults":{"webhook":{"reset_rate":1.0}}})"));
  t->Start(2, Hook(*sim));
  done = Drain(t.get(), 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].response.error == TransportError::kReset);

  int port = sim->port();
  sim->Stop();
  HttpRequest gone;
  gone.url = "http://127.0.0.1:" + std::to_string(port) + "/hook/x";
  t->Start(3, gone);
  done = Drain(t.get(), 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].response.error == TransportError::kConnect);
  CHECK(done[0].response.status == 0);
}

TEST_CASE("an answer body over the cap is refused") {
  // A tiny server that answers with a 2 MiB body.
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  listen(lfd, 1);
  auto t = NewCurlTransport({});
  HttpRequest r;
  r.method = "GET";
  r.url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/big";
  r.timeout_s = 5;
  t->Start(1, r);
  std::vector<HttpTransport::Completion> done;
  int cfd = -1;
  for (int i = 0; i < 50 && cfd < 0; ++i) {
    t->Wait({}, 20, &done);
    pollfd p{lfd, POLLIN, 0};
    if (poll(&p, 1, 0) > 0) cfd = accept(lfd, nullptr, nullptr);
  }
  REQUIRE(cfd >= 0);
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 2097152\r\n\r\n";
  (void)!write(cfd, head.data(), head.size());
  std::string chunk(65536, 'z');
  fcntl(cfd, F_SETFL, O_NONBLOCK);
  for (int i = 0; i < 32 && done.empty(); ++i) {
    (void)!send(cfd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    t->Wait({}, 20, &done);
  }
  while (done.empty()) t->Wait({}, 50, &done);
  CHECK(done[0].response.error == TransportError::kTooLarge);
  close(cfd);
  close(lfd);
}

TEST_CASE("Wakeup makes a long wait return early and extra fds are watched") {
  auto t = NewCurlTransport({});
  std::vector<HttpTransport::Completion> done;
  t->Wakeup();
  auto start = std::chrono::steady_clock::now();
  t->Wait({}, 5000, &done);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  (void)!write(fds[1], "x", 1);
  WaitFd w{fds[0], POLLIN, 0};
  start = std::chrono::steady_clock::now();
  t->Wait(std::span<WaitFd>(&w, 1), 5000, &done);
  CHECK((w.revents & POLLIN) != 0);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  close(fds[0]);
  close(fds[1]);
}

TEST_CASE("TLS: an unknown CA is refused, the right CA file is accepted") {
  testing::TempDir dir;
  std::string out;
  // A throwaway CA and a server certificate for 127.0.0.1 signed by it.
  REQUIRE(testing::RunCommand(
              {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
               "/CN=outboxd test CA", "-keyout", dir / "ca.key", "-out", dir / "ca.pem"},
              &out) == 0);
  REQUIRE(
      testing::RunCommand({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj",
                           "/CN=127.0.0.1", "-keyout", dir / "srv.key", "-out", dir / "srv.csr"},
                          &out) == 0);
  testing::WriteFile(dir / "ext.cnf", "subjectAltName=IP:127.0.0.1\n");
  REQUIRE(testing::RunCommand({"openssl", "x509", "-req", "-in", dir / "srv.csr", "-CA",
                               dir / "ca.pem", "-CAkey", dir / "ca.key", "-CAcreateserial", "-days",
                               "2", "-extfile", dir / "ext.cnf", "-out", dir / "srv.pem"},
                              &out) == 0);
  testing::SimOptions so;
  so.tls_cert = dir / "srv.pem";
  so.tls_key = dir / "srv.key";
  auto sim = SimProcess::Start(so);
  REQUIRE(sim);
  auto t = NewCurlTransport({});
  HttpRequest r = Hook(*sim);
  REQUIRE(r.url.rfind("https://", 0) == 0);
  t->Start(1, r);
  auto done = Drain(t.get(), 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].response.error == TransportError::kTls);
  r.ca_file = dir / "ca.pem";
  t->Start(2, r);
  done = Drain(t.get(), 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].response.error == TransportError::kNone);
  CHECK(done[0].response.status == 200);
}

}  // namespace
}  // namespace outboxd::providers
