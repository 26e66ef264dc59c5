// SimProcess: starts tests/sim/provider_sim.py as a child process, reads its
// port, and talks to its control API with a small HTTP/1.0 client. Header
// only; POSIX; no project libraries, so tests of any folder can use it.
#ifndef OUTBOXD_TESTS_SIM_SIM_PROCESS_H_
#define OUTBOXD_TESTS_SIM_SIM_PROCESS_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace outboxd::testing {

struct SimOptions {
  int port = 0;  // 0: any free port
  int seed = 1;
  std::string tls_cert, tls_key;
};

class SimProcess {
 public:
  SimProcess() = default;
  SimProcess(SimProcess&& o) noexcept { *this = std::move(o); }
  SimProcess& operator=(SimProcess&& o) noexcept {
    Stop();
    pid_ = o.pid_;
    port_ = o.port_;
    stdin_fd_ = o.stdin_fd_;
    tls_ = o.tls_;
    o.pid_ = -1;
    o.stdin_fd_ = -1;
    return *this;
  }
  ~SimProcess() { Stop(); }

  static std::optional<SimProcess> Start(const SimOptions& options = {}) {
    int out[2], in[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(in, O_CLOEXEC) != 0) return std::nullopt;
    pid_t pid = fork();
    if (pid < 0) return std::nullopt;
    if (pid == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(in[0], STDIN_FILENO);
      std::vector<std::string> args = {OUTBOXD_PYTHON, OUTBOXD_SIM,
                                       "--port",       std::to_string(options.port),
                                       "--seed",       std::to_string(options.seed)};
      if (!options.tls_cert.empty()) {
        args.insert(args.end(), {"--tls-cert", options.tls_cert, "--tls-key", options.tls_key});
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    close(in[0]);
    SimProcess sim;
    sim.pid_ = pid;
    sim.stdin_fd_ = in[1];
    sim.tls_ = !options.tls_cert.empty();
    // Wait for "PORT <n>\n".
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      char buf[256];
      ssize_t n = read(out[0], buf, sizeof(buf));
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    close(out[0]);
    if (line.rfind("PORT ", 0) != 0) return std::nullopt;
    sim.port_ = std::stoi(line.substr(5));
    return sim;
  }

  int port() const { return port_; }
  std::string base_url() const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
  }

  // Control API (plain HTTP only).
  bool Config(std::string_view json) {
    return Request("POST", "/_sim/config", json).find("\"ok\": true") != std::string::npos;
  }
  std::string Requests(int since = 0) {
    return Request("GET", "/_sim/requests?since=" + std::to_string(since), "");
  }
  std::string Stats() { return Request("GET", "/_sim/stats", ""); }
  bool Reset() { return Request("POST", "/_sim/reset", "").find("\"ok\"") != std::string::npos; }

  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      for (int i = 0; i < 200; ++i) {
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          break;
        }
        poll(nullptr, 0, 10);
      }
      if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
      }
      pid_ = -1;
    }
    if (stdin_fd_ >= 0) close(stdin_fd_);
    stdin_fd_ = -1;
  }

  // The body of a control request; empty on failure.
  std::string Request(const std::string& method, const std::string& path, std::string_view body) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      return {};
    }
    std::string req = method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: " +
                      "application/json\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\n\r\n" + std::string(body);
    size_t off = 0;
    while (off < req.size()) {
      ssize_t n = send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    std::string resp;
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 10000) <= 0) break;
      char buf[65536];
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      resp.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    size_t split = resp.find("\r\n\r\n");
    return split == std::string::npos ? std::string() : resp.substr(split + 4);
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int stdin_fd_ = -1;
  bool tls_ = false;
};

}  // namespace outboxd::testing

#endif  // OUTBOXD_TESTS_SIM_SIM_PROCESS_H_
