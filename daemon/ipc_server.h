// IpcServer: the Unix stream socket of protocol v1. Frames NDJSON lines,
// hands them to the Service, and writes replies back in request order.
//
// Non-blocking and single-threaded: the event loop asks for the descriptors
// to watch (AppendPollFds) and hands back what became ready (HandleReady).
// Every round reads what all ready clients sent, lets the Service defer their
// enqueues, commits them together, then writes the replies: one fsync serves
// every client of the round.
//
// Bounds: a line longer than max_request_bytes gets bad_request and the
// connection closes; a client whose unread replies pass max_reply_backlog is
// not read from until it catches up; connections beyond max_connections are
// answered with an error and closed.
//
// Thread rules: one thread (the event loop).
#ifndef OUTBOXD_DAEMON_IPC_SERVER_H_
#define OUTBOXD_DAEMON_IPC_SERVER_H_

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "daemon/service.h"
#include "providers/http.h"

namespace outboxd {

struct IpcOptions {
  size_t max_request_bytes = 1 << 20;
  size_t max_connections = 1024;
  size_t max_reply_backlog = 4 << 20;
  std::vector<uid_t> allowed_uids;  // empty: anyone the socket mode lets in
  std::vector<gid_t> allowed_gids;
};

class IpcServer {
 public:
  IpcServer(IpcOptions options, Service* service);
  ~IpcServer();
  IpcServer(const IpcServer&) = delete;
  IpcServer& operator=(const IpcServer&) = delete;

  // Binds `path` with file mode `mode`, replacing a stale socket file (but
  // never a live socket or a file that is not a socket). False with `error`.
  bool Listen(const std::string& path, mode_t mode, std::string* error);
  // Uses an already listening socket (systemd socket activation).
  void Adopt(int fd);

  // Stops accepting; the listening socket is closed (and, if this server
  // bound it, its file removed).
  void StopListening();

  // Descriptors to watch this round.
  void AppendPollFds(std::vector<providers::WaitFd>* fds);
  // Handles the readiness reported for the fds appended last, then commits
  // and writes replies.
  void HandleReady(std::span<const providers::WaitFd> fds);
  // True while a connection has whole lines not yet handled: the event loop
  // should not block.
  bool HasPendingWork() const;

  // Tries to write every queued reply; true when nothing is left to write.
  bool FlushAll();
  void CloseAll();

  size_t connection_count() const { return conns_.size(); }
  uint64_t connections_refused() const { return refused_; }

 private:
  struct Slot {
    bool ready = false;
    std::string reply;
  };
  struct Conn {
    int fd = -1;
    uint64_t id = 0;
    std::string in;          // bytes read, not yet handled
    size_t scanned = 0;      // bytes of `in` known to hold no newline
    std::deque<Slot> slots;  // one per request, in order
    uint64_t first_seq = 0;  // sequence number of slots.front()
    std::string out;         // replies ready to write
    size_t out_off = 0;
    bool read_closed = false;
    bool close_after_flush = false;
    bool deferred = false;  // has an enqueue waiting for this round's commit
    bool broken = false;    // write failed: drop
  };

  void Accept();
  void ReadFrom(Conn* c);
  void ProcessLines(Conn* c);
  // Answers bad_request for an over-long line and closes after the reply.
  void RefuseLongLine(Conn* c);
  void Complete(uint64_t ticket, std::string reply);
  void MoveReady(Conn* c);
  void WriteTo(Conn* c);
  bool PeerAllowed(int fd, std::string* who);
  void Close(uint64_t id);

  IpcOptions options_;
  Service* service_;
  int listen_fd_ = -1;
  std::string bound_path_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::vector<uint64_t> poll_ids_;  // conn id per appended fd (0: listener)
  uint64_t refused_ = 0;
  // Enqueues deferred this round, by ticket: (connection id, sequence).
  std::vector<std::pair<uint64_t, uint64_t>> round_tickets_;
};

}  // namespace outboxd

#endif  // OUTBOXD_DAEMON_IPC_SERVER_H_
