// Config: the TOML configuration file, as one declarative table of keys.
//
// LoadConfig is pure and repeatable (start-up, --check-config, SIGHUP): it
// either fills a whole Config or fails with "FILE:LINE: key 'a.b': reason".
// Unknown keys, wrong types and bad values all fail. Secrets ("file:NAME",
// resolved in $CREDENTIALS_DIRECTORY when relative, or "env:NAME") are
// resolved here and listed in secrets() so logs can scrub them; no error
// message ever contains a secret's value.
//
// Thread rules: plain data.
#ifndef OUTBOXD_DAEMON_CONFIG_H_
#define OUTBOXD_DAEMON_CONFIG_H_

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "daemon/log.h"
#include "providers/provider.h"

namespace outboxd {

struct ProviderConfig {
  providers::ProviderSettings settings;  // name, type, string values, tables
  // Rate-limit overrides by key ("rate_limit", "events_rate_limit", ...).
  std::map<std::string, providers::Rate> limits;
  int concurrency = 4;
  double timeout_s = 30;
};

struct Config {
  std::string source = "built-in defaults";  // the file, for messages

  struct Store {
    std::string path;
    int64_t max_size = 256ll << 20;
    bool synchronous_full = true;
    double keep_delivered_s = 3600;
    double keep_dead_s = 30 * 86400.0;
  } store;

  struct Ipc {
    std::string socket;
    mode_t mode = 0660;
    size_t max_request_bytes = 1 << 20;
    size_t max_connections = 1024;
    size_t max_batch = 10000;
    std::vector<uid_t> allowed_uids;
    std::vector<gid_t> allowed_gids;
  } ipc;

  struct Delivery {
    double max_age_s = 7 * 86400.0;
    double backoff_base_s = 1;
    double backoff_cap_s = 300;
    double shutdown_timeout_s = 10;
  } delivery;

  LogLevel log_level = LogLevel::kInfo;

  struct Metrics {
    std::string textfile;  // empty: none
    double interval_s = 15;
  } metrics;

  std::vector<ProviderConfig> providers;
  std::vector<std::string> secrets;  // resolved secret values, for scrubbing
};

// Where the database and socket live without a configuration file: under
// systemd (or with $STATE_DIRECTORY / $RUNTIME_DIRECTORY) the system paths,
// otherwise ./outboxd-data/.
std::string DefaultDatabasePath();
std::string DefaultSocketPath();

// Built-in defaults: no providers.
Config DefaultConfig();

// Loads `path` over the defaults. False with `error` set on any mistake.
bool LoadConfig(const std::string& path, Config* config, std::string* error);

}  // namespace outboxd

#endif  // OUTBOXD_DAEMON_CONFIG_H_
