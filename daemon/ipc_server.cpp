#include "daemon/ipc_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "daemon/log.h"

namespace outboxd {
namespace {

constexpr size_t kReadChunk = 64 * 1024;

void SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

}  // namespace

IpcServer::IpcServer(IpcOptions options, Service* service)
    : options_(std::move(options)), service_(service) {}

IpcServer::~IpcServer() {
  CloseAll();
  StopListening();
}

bool IpcServer::Listen(const std::string& path, mode_t mode, std::string* error) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    *error =
        fmt::format("socket path \"{}\" must have 1 to {} bytes", path, sizeof(addr.sun_path) - 1);
    return false;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      *error = fmt::format("{} exists and is not a socket; refusing to replace it", path);
      return false;
    }
    // A live daemon answers connect(); a stale file from a crash does not.
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
      bool live = connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
      close(probe);
      if (live) {
        *error = fmt::format("{} is in use by a running process", path);
        return false;
      }
    }
    unlink(path.c_str());
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *error = fmt::format("socket: {}", std::strerror(errno));
    return false;
  }
  // Bind under a restrictive umask so the socket is never briefly too open.
  mode_t old = umask(0177);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  umask(old);
  if (rc != 0) {
    *error = fmt::format("bind {}: {}", path, std::strerror(errno));
    close(fd);
    return false;
  }
  if (chmod(path.c_str(), mode) != 0) {
    *error = fmt::format("chmod {}: {}", path, std::strerror(errno));
    close(fd);
    unlink(path.c_str());
    return false;
  }
  if (listen(fd, 512) != 0) {
    *error = fmt::format("listen {}: {}", path, std::strerror(errno));
    close(fd);
    unlink(path.c_str());
    return false;
  }
  listen_fd_ = fd;
  bound_path_ = path;
  return true;
}

void IpcServer::Adopt(int fd) {
  SetNonBlocking(fd);
  listen_fd_ = fd;
}

void IpcServer::StopListening() {
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    listen_fd_ = -1;
  }
  if (!bound_path_.empty()) {
    unlink(bound_path_.c_str());
    bound_path_.clear();
  }
}

void IpcServer::AppendPollFds(std::vector<providers::WaitFd>* fds) {
  poll_ids_.clear();
  if (listen_fd_ >= 0) {
    fds->push_back({listen_fd_, POLLIN, 0});
    poll_ids_.push_back(0);
  }
  for (auto& [id, c] : conns_) {
    short events = 0;
    size_t backlog = c->out.size() - c->out_off;
    if (!c->read_closed && !c->close_after_flush && backlog < options_.max_reply_backlog &&
        c->in.size() <= options_.max_request_bytes) {
      events |= POLLIN;
    }
    if (backlog > 0) events |= POLLOUT;
    fds->push_back({c->fd, events, 0});
    poll_ids_.push_back(id);
  }
}

bool IpcServer::HasPendingWork() const {
  for (const auto& [id, c] : conns_) {
    if (c->close_after_flush) continue;
    if (c->in.find('\n', c->scanned) != std::string::npos &&
        c->out.size() - c->out_off < options_.max_reply_backlog) {
      return true;
    }
  }
  return false;
}

void IpcServer::HandleReady(std::span<const providers::WaitFd> fds) {
  size_t n = std::min(fds.size(), poll_ids_.size());
  bool accept = false;
  for (size_t i = 0; i < n; ++i) {
    if (fds[i].revents == 0) continue;
    uint64_t id = poll_ids_[i];
    if (id == 0) {
      accept = true;
      continue;
    }
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    Conn* c = it->second.get();
    if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) ReadFrom(c);
  }
  if (accept) Accept();

  // One round: every connection's whole lines, then one commit for all.
  round_tickets_.clear();
  for (auto& [id, c] : conns_) ProcessLines(c.get());
  if (service_->HasDeferred()) {
    service_->Commit(
        [this](uint64_t ticket, std::string reply) { Complete(ticket, std::move(reply)); });
  }
  for (auto& [id, c] : conns_) c->deferred = false;

  std::vector<uint64_t> dead;
  for (auto& [id, c] : conns_) {
    MoveReady(c.get());
    WriteTo(c.get());
    bool drained = c->out_off >= c->out.size() && c->slots.empty();
    if (c->broken || (drained && (c->close_after_flush ||
                                  (c->read_closed && c->in.find('\n') == std::string::npos)))) {
      dead.push_back(id);
    }
  }
  for (uint64_t id : dead) Close(id);
}

void IpcServer::Accept() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        OUTBOXD_LOG_WARN("accept: {}", std::strerror(errno));
      }
      return;
    }
    std::string who;
    if (!PeerAllowed(fd, &who)) {
      ++refused_;
      OUTBOXD_LOG_WARN("refused connection from {}: not in ipc.allowed_uids/allowed_gids", who);
      std::string line = ErrorReply(ErrorCode::kBadRequest, "this user may not use outboxd") + "\n";
      (void)!write(fd, line.data(), line.size());
      close(fd);
      continue;
    }
    if (conns_.size() >= options_.max_connections) {
      ++refused_;
      OUTBOXD_LOG_WARN("refused connection from {}: {} connections open (ipc.max_connections)", who,
                       conns_.size());
      std::string line = ErrorReply(ErrorCode::kBadRequest, "too many connections") + "\n";
      (void)!write(fd, line.data(), line.size());
      close(fd);
      continue;
    }
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->id = next_id_++;
    OUTBOXD_LOG_DEBUG("connection {} from {}", c->id, who);
    conns_.emplace(c->id, std::move(c));
  }
}

bool IpcServer::PeerAllowed(int fd, std::string* who) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    *who = "an unknown peer";
    return options_.allowed_uids.empty() && options_.allowed_gids.empty();
  }
  *who = fmt::format("pid {} uid {} gid {}", cred.pid, cred.uid, cred.gid);
  if (options_.allowed_uids.empty() && options_.allowed_gids.empty()) return true;
  if (cred.uid == 0 || cred.uid == getuid()) return true;
  if (std::find(options_.allowed_uids.begin(), options_.allowed_uids.end(), cred.uid) !=
      options_.allowed_uids.end()) {
    return true;
  }
  return std::find(options_.allowed_gids.begin(), options_.allowed_gids.end(), cred.gid) !=
         options_.allowed_gids.end();
}

void IpcServer::ReadFrom(Conn* c) {
  char buf[kReadChunk];
  // Read at most a few chunks per round so one busy client cannot starve others.
  for (int i = 0; i < 16; ++i) {
    if (c->in.size() > options_.max_request_bytes) return;
    ssize_t n = read(c->fd, buf, sizeof(buf));
    if (n > 0) {
      c->in.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      c->read_closed = true;
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) c->read_closed = true;
    return;
  }
}

void IpcServer::ProcessLines(Conn* c) {
  if (c->close_after_flush || c->broken) return;
  size_t start = 0;
  while (c->out.size() - c->out_off < options_.max_reply_backlog) {
    size_t nl = c->in.find('\n', std::max(start, c->scanned));
    if (nl == std::string::npos) {
      c->scanned = c->in.size();
      if (c->in.size() - start > options_.max_request_bytes) return RefuseLongLine(c);
      break;
    }
    if (nl - start > options_.max_request_bytes) return RefuseLongLine(c);
    std::string_view line(c->in.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {  // blank lines are ignored, as NDJSON readers do
      start = nl + 1;
      continue;
    }
    uint64_t seq = c->first_seq + c->slots.size();
    uint64_t ticket = round_tickets_.size();
    std::string reply;
    Service::Action a = service_->Handle(line, c->deferred, ticket, &reply);
    if (a == Service::Action::kAfterCommit) break;  // handled next round, in order
    c->slots.push_back({a == Service::Action::kReplied, std::move(reply)});
    if (a == Service::Action::kDeferred) {
      round_tickets_.push_back({c->id, seq});
      c->deferred = true;
    }
    start = nl + 1;
  }
  if (start > 0) {
    c->in.erase(0, start);
    c->scanned = 0;
  }
}

void IpcServer::RefuseLongLine(Conn* c) {
  c->slots.push_back(
      {true, ErrorReply(ErrorCode::kBadRequest, fmt::format("request line longer than {} bytes",
                                                            options_.max_request_bytes))});
  c->close_after_flush = true;
  c->in.clear();
  c->scanned = 0;
}

void IpcServer::Complete(uint64_t ticket, std::string reply) {
  if (ticket >= round_tickets_.size()) return;
  auto [conn_id, seq] = round_tickets_[ticket];
  auto it = conns_.find(conn_id);
  if (it == conns_.end()) return;  // the client left; its event is stored all the same
  Conn* c = it->second.get();
  if (seq < c->first_seq || seq - c->first_seq >= c->slots.size()) return;
  Slot& s = c->slots[seq - c->first_seq];
  s.ready = true;
  s.reply = std::move(reply);
}

void IpcServer::MoveReady(Conn* c) {
  while (!c->slots.empty() && c->slots.front().ready) {
    c->out += c->slots.front().reply;
    c->out.push_back('\n');
    c->slots.pop_front();
    ++c->first_seq;
  }
}

void IpcServer::WriteTo(Conn* c) {
  while (c->out_off < c->out.size()) {
    ssize_t n = send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c->out_off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    c->broken = true;  // EPIPE, ECONNRESET: the client is gone
    return;
  }
  if (c->out_off == c->out.size()) {
    c->out.clear();
    c->out_off = 0;
  } else if (c->out_off > (1 << 20)) {
    c->out.erase(0, c->out_off);
    c->out_off = 0;
  }
}

bool IpcServer::FlushAll() {
  bool done = true;
  for (auto& [id, c] : conns_) {
    MoveReady(c.get());
    WriteTo(c.get());
    if (!c->broken && c->out_off < c->out.size()) done = false;
  }
  return done;
}

void IpcServer::Close(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  close(it->second->fd);
  conns_.erase(it);
}

void IpcServer::CloseAll() {
  for (auto& [id, c] : conns_) close(c->fd);
  conns_.clear();
}

}  // namespace outboxd
