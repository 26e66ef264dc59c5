// Store rates against backlog size: enqueue (one event per transaction, and
// 100 per transaction), claim and settle (100 rows per cycle), with
// synchronous=full, at a backlog of N queued rows; and the time to open a
// file holding that backlog.
//
//   store_bench [--rows 1000,100000,1000000] [--dir DIR] [--seconds S]
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "store/store.h"

namespace {

using Clock = std::chrono::steady_clock;
using outboxd::store::Store;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::unique_ptr<Store> Open(const std::string& path, bool full) {
  outboxd::store::Options o;
  o.path = path;
  o.max_size_bytes = 8ll << 30;
  o.synchronous_full = full;
  std::unique_ptr<Store> s;
  auto st = Store::Open(o, &s);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    std::exit(1);
  }
  return s;
}

std::vector<outboxd::store::NewEvent> Batch(int n, double at) {
  std::vector<outboxd::store::NewEvent> b;
  std::string body(280, 'x');
  for (int i = 0; i < n; ++i) b.push_back({"p", "", "{}", body, at});
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<long> sizes = {1000, 100000, 1000000};
  std::string base = "/var/tmp";
  double seconds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--rows") {
      sizes.clear();
      std::stringstream ss(argv[i + 1]);
      std::string part;
      while (std::getline(ss, part, ',')) sizes.push_back(std::stol(part));
    } else if (a == "--dir") {
      base = argv[i + 1];
    } else if (a == "--seconds") {
      seconds = std::stod(argv[i + 1]);
    }
  }
  std::printf(
      "| queued rows | enqueue, 1/txn (events/s) | enqueue, 100/txn (events/s) | claim+settle, "
      "100/cycle (rows/s) | open (ms) |\n");
  std::printf("| ---: | ---: | ---: | ---: | ---: |\n");
  for (long rows : sizes) {
    std::string dir = base + "/outboxd-store-bench";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::string path = dir + "/outbox.db";
    {
      // The backlog, quickly: big transactions, synchronous=normal.
      auto s = Open(path, false);
      for (long done = 0; done < rows; done += 10000) {
        std::vector<std::vector<outboxd::store::NewEvent>> batches{
            Batch(static_cast<int>(std::min<long>(10000, rows - done)), 1000)};
        std::vector<outboxd::store::BatchResult> r;
        if (!s->Enqueue(batches, &r).ok()) return 1;
      }
    }
    auto t0 = Clock::now();
    auto s = Open(path, true);
    double open_ms = Since(t0) * 1000;
    auto rate = [&](int per_txn) {
      long n = 0;
      auto start = Clock::now();
      std::vector<std::vector<outboxd::store::NewEvent>> batches{Batch(per_txn, 9e9)};
      while (Since(start) < seconds) {
        std::vector<outboxd::store::BatchResult> r;
        if (!s->Enqueue(batches, &r).ok()) break;
        n += per_txn;
      }
      return n / Since(start);
    };
    double one = rate(1);
    double hundred = rate(100);
    // Claim and settle (delivered) 100 due rows per cycle. After each cycle
    // as many new due rows are enqueued, outside the timed part, so the
    // backlog stays at `rows` however long the measurement runs.
    long settled = 0;
    double busy = 0;
    auto start = Clock::now();
    std::vector<outboxd::store::Event> got;
    std::vector<outboxd::store::Outcome> outcomes;
    while (Since(start) < seconds) {
      auto c0 = Clock::now();
      if (!s->Claim("p", 2000, 100, 60, &got).ok() || got.empty()) break;
      outcomes.clear();
      for (auto& e : got)
        outcomes.push_back({e.id, outboxd::store::OutcomeKind::kDelivered, 2000, 200, "",
                            std::nullopt, true, false, "p"});
      if (!s->Settle(outcomes).ok()) break;
      busy += Since(c0);
      settled += static_cast<long>(got.size());
      std::vector<std::vector<outboxd::store::NewEvent>> top_up{
          Batch(static_cast<int>(got.size()), 1000)};
      std::vector<outboxd::store::BatchResult> r;
      if (!s->Enqueue(top_up, &r).ok()) break;
    }
    double claim = busy > 0 ? settled / busy : 0;
    std::printf("| %ld | %.0f | %.0f | %.0f | %.1f |\n", rows, one, hundred, claim, open_ms);
    std::fflush(stdout);
    s.reset();
    std::filesystem::remove_all(dir);
  }
  return 0;
}
