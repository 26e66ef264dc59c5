// The systemd seam: readiness and status notifications, the watchdog, and
// socket activation. Without libsystemd at build time the notify protocol
// is spoken directly (a datagram to $NOTIFY_SOCKET) and $LISTEN_FDS is read
// by hand, so the daemon behaves the same either way.
// Thread rules: call from the main thread.
#ifndef OUTBOXD_DAEMON_SYSTEMD_H_
#define OUTBOXD_DAEMON_SYSTEMD_H_

#include <string_view>
#include <vector>

namespace outboxd {

// Sends `state` ("READY=1", "STATUS=...", "WATCHDOG=1", "STOPPING=1",
// "RELOADING=1") to the service manager. A no-op when not under systemd.
void NotifySystemd(std::string_view state);

// Listening sockets passed by socket activation ($LISTEN_FDS for this pid).
// Empty when not socket-activated. Unsets the variables.
std::vector<int> SystemdListenFds();

// The watchdog interval in seconds when WatchdogSec= is set for this
// process, else 0.
double SystemdWatchdogInterval();

// True when started by systemd (INVOCATION_ID or NOTIFY_SOCKET set).
bool UnderSystemd();

}  // namespace outboxd

#endif  // OUTBOXD_DAEMON_SYSTEMD_H_
