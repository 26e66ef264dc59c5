// App: the daemon's wiring and event loop. Builds the store, transport,
// providers, scheduler, service and socket server from a Config, then runs
// one loop: wait on the sockets, the signals and the transfers together,
// hand completions to the scheduler, serve clients, run what is due.
//
// Thread rules: Run() owns the calling thread until the daemon stops.
#ifndef OUTBOXD_DAEMON_APP_H_
#define OUTBOXD_DAEMON_APP_H_

#include <string>

#include "daemon/config.h"

namespace outboxd {

// Runs the daemon until SIGTERM/SIGINT. `config_path` is re-read on SIGHUP
// (empty: built-in defaults, nothing to reload). Returns the exit code:
// 0 after a graceful stop, 1 when the store or socket cannot be set up.
int RunDaemon(const Config& config, const std::string& config_path);

}  // namespace outboxd

#endif  // OUTBOXD_DAEMON_APP_H_
