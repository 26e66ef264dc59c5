// Header-only helpers for tests that run the real outboxd binary: a temp
// directory, the daemon as a child process, and a blocking socket client.
// Waits use poll() with timeouts; nothing here sleeps blindly.
#ifndef OUTBOXD_TESTS_COMMON_DAEMON_PROCESS_H_
#define OUTBOXD_TESTS_COMMON_DAEMON_PROCESS_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace outboxd::testing {

inline void WaitMs(int ms) { poll(nullptr, 0, ms); }

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/outboxd-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A blocking line client with timeouts.
class LineClient {
 public:
  LineClient() = default;
  explicit LineClient(const std::string& path) { Connect(path); }
  ~LineClient() { Close(); }
  LineClient(const LineClient&) = delete;
  LineClient& operator=(const LineClient&) = delete;

  bool Connect(const std::string& path) {
    Close();
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      Close();
      return false;
    }
    return true;
  }
  bool connected() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    buf_.clear();
  }
  bool Send(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        return false;
      }
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // One line, or nullopt on EOF, error or timeout.
  std::optional<std::string> ReadLine(int timeout_ms = 10000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now())
                                      .count());
      if (left <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, left) <= 0) continue;
      char chunk[65536];
      ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  std::optional<std::string> Ask(const std::string& line, int timeout_ms = 10000) {
    if (!Send(line + "\n")) return std::nullopt;
    return ReadLine(timeout_ms);
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

// The outboxd binary as a child process, its stderr captured to a file.
class DaemonProcess {
 public:
  DaemonProcess() = default;
  ~DaemonProcess() { Kill(SIGKILL); }
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  static std::string Binary(const std::string& name = "outboxd") {
    return std::string(OUTBOXD_BINARY_DIR) + "/daemon/" + name;
  }

  // Starts `Binary() args...` with `env` added; stderr appended to log_path.
  bool Start(std::vector<std::string> args, const std::string& log_path,
             std::map<std::string, std::string> env = {}) {
    log_path_ = log_path;
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
      int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (log >= 0) {
        dup2(log, STDERR_FILENO);
        dup2(log, STDOUT_FILENO);
      }
      int null = open("/dev/null", O_RDONLY);
      if (null >= 0) dup2(null, STDIN_FILENO);
      std::string bin = Binary();
      std::vector<char*> argv{bin.data()};
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    return true;
  }

  // Waits until `socket_path` accepts a connection (or the child exits).
  bool WaitReady(const std::string& socket_path, int timeout_ms = 10000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!Running()) return false;
      LineClient c;
      if (c.Connect(socket_path)) {
        auto r = c.Ask(R"({"op":"ping"})", 2000);
        if (r && r->find("\"ok\":true") != std::string::npos) return true;
      }
      WaitMs(10);
    }
    return false;
  }

  bool Running() {
    if (pid_ <= 0) return false;
    int status;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = status;
      pid_ = -1;
      return false;
    }
    return true;
  }

  void Signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }

  // Sends `sig` and reaps the child; returns its wait status.
  int Kill(int sig) {
    if (pid_ <= 0) return status_;
    kill(pid_, sig);
    return Wait(30000);
  }

  // Waits for the child to exit; SIGKILLs it after timeout_ms.
  int Wait(int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (pid_ > 0) {
      int status;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        status_ = status;
        pid_ = -1;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) kill(pid_, SIGKILL);
      WaitMs(5);
    }
    return status_;
  }

  pid_t pid() const { return pid_; }
  std::string Log() const { return ReadFile(log_path_); }

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  std::string log_path_;
};

// Runs a command to completion; returns its exit code (or -1) and output.
inline int RunCommand(std::vector<std::string> args, std::string* output,
                      const std::string& stdin_text = "",
                      std::map<std::string, std::string> env = {}) {
  signal(SIGPIPE, SIG_IGN);
  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    dup2(in_pipe[0], STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(out_pipe[1], STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  // Feed stdin and drain stdout together so neither side blocks.
  size_t off = 0;
  bool in_open = true;
  if (stdin_text.empty()) {
    close(in_pipe[1]);
    in_open = false;
  }
  output->clear();
  for (;;) {
    pollfd p[2] = {{out_pipe[0], POLLIN, 0}, {in_open ? in_pipe[1] : -1, POLLOUT, 0}};
    poll(p, 2, 1000);
    if (p[1].revents & (POLLOUT | POLLERR)) {
      ssize_t n = write(in_pipe[1], stdin_text.data() + off, stdin_text.size() - off);
      if (n > 0) off += static_cast<size_t>(n);
      if (n < 0 || off == stdin_text.size()) {
        close(in_pipe[1]);
        in_open = false;
      }
    }
    if (p[0].revents & (POLLIN | POLLHUP)) {
      char buf[65536];
      ssize_t n = read(out_pipe[0], buf, sizeof(buf));
      if (n <= 0) break;
      output->append(buf, static_cast<size_t>(n));
    }
  }
  if (in_open) close(in_pipe[1]);
  close(out_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace outboxd::testing

#endif  // OUTBOXD_TESTS_COMMON_DAEMON_PROCESS_H_
