#include "daemon/systemd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#ifdef OUTBOXD_WITH_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace outboxd {

#ifdef OUTBOXD_WITH_SYSTEMD

void NotifySystemd(std::string_view state) {
  std::string s(state);
  sd_notify(0, s.c_str());
}

std::vector<int> SystemdListenFds() {
  std::vector<int> fds;
  int n = sd_listen_fds(1);
  for (int i = 0; i < n; ++i) fds.push_back(SD_LISTEN_FDS_START + i);
  return fds;
}

double SystemdWatchdogInterval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0) return static_cast<double>(usec) / 1e6;
  return 0;
}

#else

void NotifySystemd(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || (path[0] != '/' && path[0] != '@')) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t len = std::strlen(path);
  if (len >= sizeof(addr.sun_path)) return;
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
         static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
  close(fd);
}

std::vector<int> SystemdListenFds() {
  std::vector<int> fds;
  const char* pid = std::getenv("LISTEN_PID");
  const char* n = std::getenv("LISTEN_FDS");
  if (pid && n && std::strtol(pid, nullptr, 10) == getpid()) {
    long count = std::strtol(n, nullptr, 10);
    for (long i = 0; i < count; ++i) {
      int fd = 3 + static_cast<int>(i);
      fcntl(fd, F_SETFD, FD_CLOEXEC);
      fds.push_back(fd);
    }
  }
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  return fds;
}

double SystemdWatchdogInterval() {
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  if (!usec) return 0;
  if (pid && std::strtol(pid, nullptr, 10) != getpid()) return 0;
  return std::strtod(usec, nullptr) / 1e6;
}

#endif

bool UnderSystemd() {
  return std::getenv("INVOCATION_ID") != nullptr || std::getenv("NOTIFY_SOCKET") != nullptr;
}

}  // namespace outboxd
