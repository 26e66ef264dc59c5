#include "daemon/app.h"

#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "daemon/clock.h"
#include "daemon/ipc_server.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/scheduler.h"
#include "daemon/service.h"
#include "daemon/systemd.h"
#include "providers/http.h"
#include "store/store.h"

namespace outboxd {
namespace {

constexpr double kPruneEvery = 60;
constexpr double kStatusEvery = 5;

// Builds the lanes a configuration asks for. False with `error` if a
// provider refuses its settings.
bool BuildLanes(const Config& config, std::vector<LaneSpec>* lanes, std::string* error) {
  for (const auto& pc : config.providers) {
    LaneSpec spec;
    std::string err;
    spec.provider = providers::NewProvider(pc.settings, &err);
    if (!spec.provider) {
      *error = fmt::format("providers.{}: {}", pc.settings.name, err);
      return false;
    }
    spec.concurrency = pc.concurrency;
    auto endpoints = spec.provider->endpoints();
    for (size_t i = 0; i < endpoints.size(); ++i) {
      auto it = pc.limits.find(endpoints[i].limit_key);
      if (it != pc.limits.end()) spec.limits[i] = it->second;
    }
    lanes->push_back(std::move(spec));
  }
  return true;
}

void EnsureParent(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (!ec) ::chmod(parent.c_str(), 0750);
}

int BlockSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

class Daemon {
 public:
  Daemon(const Config& config, std::string config_path)
      : config_(config), config_path_(std::move(config_path)) {}

  int Run();

 private:
  bool Setup();
  void Reload();
  void Housekeeping(double mono);
  void ReportStatus();

  Config config_;
  std::string config_path_;
  std::unique_ptr<Clock> clock_ = NewSystemClock();
  std::unique_ptr<Random> random_ = NewSystemRandom();
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<providers::HttpTransport> transport_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<IpcServer> ipc_;
  int signal_fd_ = -1;
  double watchdog_every_ = 0;
  double next_prune_ = 0, next_status_ = 0, next_watchdog_ = 0, next_metrics_ = 0;
  double last_prune_ = 0;
  double full_until_ = 0;  // prune every second until then: the store was full
  uint64_t queue_full_seen_ = 0;
  std::string last_status_;
};

bool Daemon::Setup() {
  SetLogLevel(config_.log_level);
  SetLogSecrets(config_.secrets);
  signal_fd_ = BlockSignals();

  EnsureParent(config_.store.path);
  store::Options so;
  so.path = config_.store.path;
  so.max_size_bytes = config_.store.max_size;
  so.synchronous_full = config_.store.synchronous_full;
  store::Status s = store::Store::Open(so, &store_);
  if (!s.ok()) {
    OUTBOXD_LOG_ERROR("cannot open the store: {}", s.message());
    return false;
  }
  OUTBOXD_LOG_INFO(
      "store {} open (synchronous={}, max_size={}); {} in-flight events returned "
      "to pending",
      config_.store.path, config_.store.synchronous_full ? "full" : "normal",
      config_.store.max_size, store_->recovered_on_open());

  transport_ = providers::NewCurlTransport({});
  SchedulerOptions opts;
  opts.max_age_s = config_.delivery.max_age_s;
  opts.backoff = {config_.delivery.backoff_base_s, config_.delivery.backoff_cap_s};
  scheduler_ = std::make_unique<Scheduler>(store_.get(), transport_.get(), clock_.get(),
                                           random_.get(), opts);
  std::vector<LaneSpec> lanes;
  std::string error;
  if (!BuildLanes(config_, &lanes, &error)) {
    OUTBOXD_LOG_ERROR("{}", error);
    return false;
  }
  scheduler_->Configure(std::move(lanes));

  ServiceOptions svc;
  svc.max_batch = config_.ipc.max_batch;
  service_ = std::make_unique<Service>(store_.get(), scheduler_.get(), clock_.get(), svc);
  service_->SetProviders(scheduler_->Providers());

  IpcOptions io;
  io.max_request_bytes = config_.ipc.max_request_bytes;
  io.max_connections = config_.ipc.max_connections;
  io.allowed_uids = config_.ipc.allowed_uids;
  io.allowed_gids = config_.ipc.allowed_gids;
  ipc_ = std::make_unique<IpcServer>(io, service_.get());
  std::vector<int> fds = SystemdListenFds();
  if (!fds.empty()) {
    ipc_->Adopt(fds[0]);
    OUTBOXD_LOG_INFO("listening on the socket passed by systemd");
  } else {
    EnsureParent(config_.ipc.socket);
    if (!ipc_->Listen(config_.ipc.socket, config_.ipc.mode, &error)) {
      OUTBOXD_LOG_ERROR("cannot listen: {}", error);
      return false;
    }
    OUTBOXD_LOG_INFO("listening on {} (mode {:04o})", config_.ipc.socket, config_.ipc.mode);
  }
  std::string names;
  for (const auto& pc : config_.providers) names += (names.empty() ? "" : ", ") + pc.settings.name;
  OUTBOXD_LOG_INFO("outboxd {} ready; providers: {}", OUTBOXD_VERSION,
                   names.empty() ? "none configured" : names);
  watchdog_every_ = SystemdWatchdogInterval() / 2;
  return true;
}

void Daemon::Reload() {
  if (config_path_.empty()) {
    OUTBOXD_LOG_INFO("SIGHUP: running on built-in defaults, nothing to reload");
    return;
  }
  NotifySystemd("RELOADING=1");
  Config fresh;
  std::string error;
  std::vector<LaneSpec> lanes;
  if (!LoadConfig(config_path_, &fresh, &error) || !BuildLanes(fresh, &lanes, &error)) {
    OUTBOXD_LOG_ERROR("reload refused, keeping the running configuration: {}", error);
    NotifySystemd("READY=1");
    return;
  }
  scheduler_->Configure(std::move(lanes));
  service_->SetProviders(scheduler_->Providers());
  SetLogLevel(fresh.log_level);
  // Old secrets stay scrubbed too: they may still be quoted somewhere.
  std::vector<std::string> secrets = config_.secrets;
  secrets.insert(secrets.end(), fresh.secrets.begin(), fresh.secrets.end());
  SetLogSecrets(secrets);
  config_.providers = fresh.providers;
  config_.log_level = fresh.log_level;
  config_.secrets = secrets;
  OUTBOXD_LOG_INFO("configuration reloaded from {}: {} providers", config_path_,
                   fresh.providers.size());
  if (fresh.store.path != config_.store.path || fresh.ipc.socket != config_.ipc.socket) {
    OUTBOXD_LOG_WARN("store and ipc settings change only at restart");
  }
  NotifySystemd("READY=1");
}

void Daemon::ReportStatus() {
  std::map<std::string, store::ProviderStats> stats;
  int64_t pending = 0, dead = 0;
  if (store_->Stats(&stats).ok()) {
    for (const auto& [name, st] : stats) {
      pending += st.count[0] + st.count[1];
      dead += st.count[3];
    }
  }
  std::string status =
      fmt::format("STATUS={} queued, {} dead; {}", pending, dead, scheduler_->Summary());
  if (status != last_status_) {
    NotifySystemd(status);
    last_status_ = status;
  }
}

void Daemon::Housekeeping(double mono) {
  // A full store prunes at once (within a second) instead of waiting for
  // the minute: deliveries may have made room.
  if (service_->counters().queue_full != queue_full_seen_) {
    queue_full_seen_ = service_->counters().queue_full;
    full_until_ = mono + kPruneEvery;
  }
  if (mono < full_until_) next_prune_ = std::min(next_prune_, last_prune_ + 1);
  if (mono >= next_prune_) {
    last_prune_ = mono;
    next_prune_ = mono + kPruneEvery;
    store::PruneOptions po;
    po.keep_delivered_s = config_.store.keep_delivered_s;
    po.keep_dead_s = config_.store.keep_dead_s;
    store::PruneResult pruned;
    store::Status s = store_->Prune(clock_->Now(), po, &pruned);
    if (!s.ok()) {
      OUTBOXD_LOG_WARN("pruning old events failed: {}", s.ToString());
    } else {
      if (pruned.deleted > 0) OUTBOXD_LOG_DEBUG("pruned {} delivered/dead events", pruned.deleted);
      // Each call is bounded so the loop stays responsive; while old rows
      // remain (a busy lane delivers more per minute than one call
      // deletes), call again each second until retention has caught up.
      if (pruned.more) next_prune_ = mono + 1;
    }
  }
  if (mono >= next_status_) {
    next_status_ = mono + kStatusEvery;
    ReportStatus();
  }
  if (watchdog_every_ > 0 && mono >= next_watchdog_) {
    next_watchdog_ = mono + watchdog_every_;
    NotifySystemd("WATCHDOG=1");
  }
  if (!config_.metrics.textfile.empty() && mono >= next_metrics_) {
    next_metrics_ = mono + config_.metrics.interval_s;
    std::string reply;
    service_->Handle(R"({"op":"metrics"})", false, 0, &reply);
    rapidjson::Document d;
    d.Parse(reply.c_str(), reply.size());
    std::string error;
    if (d.IsObject() && d.HasMember("text") && d["text"].IsString() &&
        !WriteFileAtomically(config_.metrics.textfile, d["text"].GetString(), &error)) {
      OUTBOXD_LOG_WARN("metrics textfile: {}", error);
    }
  }
}

int Daemon::Run() {
  if (!Setup()) return 1;
  NotifySystemd("READY=1");
  ReportStatus();

  bool stopping = false;
  double stop_deadline = 0;
  std::vector<providers::WaitFd> fds;
  std::vector<providers::HttpTransport::Completion> done;
  double deadline = scheduler_->RunDue();
  for (;;) {
    double mono = clock_->Monotonic();
    double wake = std::min({deadline, next_prune_, next_status_,
                            watchdog_every_ > 0 ? next_watchdog_ : deadline,
                            config_.metrics.textfile.empty() ? deadline : next_metrics_});
    if (stopping) wake = std::min(wake, stop_deadline);
    int timeout_ms = wake <= mono         ? 0
                     : wake - mono > 3600 ? 3600 * 1000
                                          : static_cast<int>(std::ceil((wake - mono) * 1000));
    fds.clear();
    fds.push_back({signal_fd_, POLLIN, 0});
    if (!stopping) ipc_->AppendPollFds(&fds);
    if (ipc_->HasPendingWork()) timeout_ms = 0;
    transport_->Wait(fds, timeout_ms, &done);
    scheduler_->OnCompletions(&done);

    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si;
      while (read(signal_fd_, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
          Reload();
        } else if (!stopping) {
          OUTBOXD_LOG_INFO("{}: stopping; waiting up to {:.0f}s for requests in flight",
                           strsignal(static_cast<int>(si.ssi_signo)),
                           config_.delivery.shutdown_timeout_s);
          NotifySystemd("STOPPING=1");
          stopping = true;
          stop_deadline = clock_->Monotonic() + config_.delivery.shutdown_timeout_s;
          // Replies owed for this round still go out; then no more requests.
          ipc_->HandleReady(std::span<const providers::WaitFd>(fds).subspan(1));
          service_->SetShuttingDown();
          ipc_->StopListening();
          scheduler_->BeginShutdown();
        }
      }
    }
    if (stopping) {
      ipc_->FlushAll();
      if (scheduler_->Idle() || clock_->Monotonic() >= stop_deadline) break;
      deadline = scheduler_->RunDue();
      continue;
    }
    ipc_->HandleReady(std::span<const providers::WaitFd>(fds).subspan(1));
    deadline = scheduler_->RunDue();
    Housekeeping(clock_->Monotonic());
  }
  scheduler_->ReleaseInFlight();
  ipc_->FlushAll();
  ipc_->CloseAll();
  OUTBOXD_LOG_INFO("stopped");
  return 0;
}

}  // namespace

int RunDaemon(const Config& config, const std::string& config_path) {
  Daemon d(config, config_path);
  return d.Run();
}

}  // namespace outboxd
