// Crash safety with real processes: a child enqueues (or claims) and reports
// what the store confirmed; the parent kill -9s it at a random moment and
// checks the file.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <set>

#include "store/store.h"
#include "tests/common/daemon_process.h"

namespace outboxd::store {
namespace {

std::string BodyFor(int64_t n) {
  return "{\"n\":" + std::to_string(n) + ",\"pad\":\"" + std::string(100, 'p') + "\"}";
}

// Reads 8-byte ids from `fd` until `count` arrived or the child died.
std::vector<int64_t> ReadIds(int fd, size_t count) {
  std::vector<int64_t> ids;
  std::string buf;
  while (ids.size() < count) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) break;
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
    while (buf.size() >= 8) {
      int64_t id;
      std::memcpy(&id, buf.data(), 8);
      buf.erase(0, 8);
      ids.push_back(id);
    }
  }
  return ids;
}

TEST_CASE("every id confirmed before kill -9 is in the file, intact") {
  std::mt19937 rng(12345);
  for (int round = 0; round < 5; ++round) {
    testing::TempDir dir;
    Options o;
    o.path = dir / "outbox.db";
    o.synchronous_full = true;
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      std::unique_ptr<Store> s;
      if (!Store::Open(o, &s).ok()) _exit(2);
      for (int64_t n = 0;; ++n) {
        std::vector<std::vector<NewEvent>> batches{
            {NewEvent{"p", "", "{}", BodyFor(n), 1000.0 + static_cast<double>(n)}}};
        std::vector<BatchResult> results;
        if (!s->Enqueue(batches, &results).ok()) _exit(3);
        int64_t id = results[0].ids[0].id;
        if (write(fds[1], &id, 8) != 8) _exit(4);
      }
    }
    close(fds[1]);
    size_t kill_after = 20 + rng() % 400;
    std::vector<int64_t> confirmed = ReadIds(fds[0], kill_after);
    kill(pid, SIGKILL);
    // Ids the child wrote before it died were confirmed too.
    std::vector<int64_t> rest = ReadIds(fds[0], SIZE_MAX);
    confirmed.insert(confirmed.end(), rest.begin(), rest.end());
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    REQUIRE(confirmed.size() >= kill_after);

    std::unique_ptr<Store> s;
    Status st = Store::Open(o, &s);
    REQUIRE_MESSAGE(st.ok(), st.ToString());
    for (int64_t id : confirmed) {
      Event e;
      REQUIRE_MESSAGE(s->Get(id, &e).ok(), "lost confirmed id " << id);
      CHECK(e.body == BodyFor(id - 1));
    }
  }
}

TEST_CASE("rows claimed by a process killed before settling are pending again") {
  testing::TempDir dir;
  Options o;
  o.path = dir / "outbox.db";
  {
    std::unique_ptr<Store> s;
    REQUIRE(Store::Open(o, &s).ok());
    std::vector<std::vector<NewEvent>> batches(1);
    for (int i = 0; i < 50; ++i) batches[0].push_back({"p", "", "{}", BodyFor(i), 1000});
    std::vector<BatchResult> results;
    REQUIRE(s->Enqueue(batches, &results).ok());
  }
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    std::unique_ptr<Store> s;
    if (!Store::Open(o, &s).ok()) _exit(2);
    std::vector<Event> got;
    if (!s->Claim("p", 2000, 20, 30, &got).ok()) _exit(3);
    for (auto& e : got) {
      if (write(fds[1], &e.id, 8) != 8) _exit(4);
    }
    for (;;) pause();  // killed while the requests are "in flight"
  }
  close(fds[1]);
  std::vector<int64_t> claimed = ReadIds(fds[0], 20);
  REQUIRE(claimed.size() == 20);
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  close(fds[0]);

  std::unique_ptr<Store> s;
  REQUIRE(Store::Open(o, &s).ok());
  CHECK(s->recovered_on_open() == 20);
  for (int64_t id : claimed) {
    Event e;
    REQUIRE(s->Get(id, &e).ok());
    CHECK(e.state == State::kPending);
    CHECK(e.attempts == 0);
  }
  std::vector<Event> again;
  REQUIRE(s->Claim("p", 2000, 100, 30, &again).ok());
  CHECK(again.size() == 50);
}

}  // namespace
}  // namespace outboxd::store
