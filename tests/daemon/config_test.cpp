// The configuration file: one test per kind of mistake, each naming file,
// line, key and reason; a full file read into typed values; secrets.
#include "daemon/config.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>

#include "tests/common/daemon_process.h"

namespace outboxd {
namespace {

using testing::TempDir;
using testing::WriteFile;

std::string LoadError(const TempDir& dir, const std::string& text) {
  std::string path = dir / "outboxd.toml";
  WriteFile(path, text);
  Config c;
  std::string error;
  CHECK_FALSE(LoadConfig(path, &c, &error));
  CHECK(error.rfind(path + ":", 0) == 0);
  return error;
}

TEST_CASE("a full file is read into typed values") {
  TempDir dir;
  std::string path = dir / "outboxd.toml";
  WriteFile(dir / "novu_key", "nk-secret-1\n");
  setenv("CREDENTIALS_DIRECTORY", dir.path().c_str(), 1);
  setenv("OUTBOXD_TEST_MOE", "moe-secret-2", 1);
  WriteFile(path, R"(
[store]
path = "/tmp/x/outbox.db"
max_size = "64MiB"
synchronous = "normal"
keep_delivered = "2h"
keep_dead = "7d"

[ipc]
socket = "/tmp/x/s.sock"
mode = "0600"
max_request_bytes = "2MiB"
max_connections = 50
max_batch = 500
allowed_uids = [1000, 1001]

[delivery]
max_age = "1d"
backoff_base = "500ms"
backoff_cap = "1m30s"
shutdown_timeout = "3s"

[log]
level = "debug"

[metrics]
textfile = "/tmp/x/outboxd.prom"
interval = "30s"

[providers.novu]
api_key = "file:novu_key"
rate_limit = "100/s"
concurrency = 8
timeout = "15s"

[providers.reco]
type = "moengage"
workspace_id = "WS1"
api_key = "env:OUTBOXD_TEST_MOE"
data_center = "101"
events_rate_limit = "600/min"
)");
  Config c;
  std::string error;
  REQUIRE_MESSAGE(LoadConfig(path, &c, &error), error);
  CHECK(c.store.path == "/tmp/x/outbox.db");
  CHECK(c.store.max_size == 64ll << 20);
  CHECK_FALSE(c.store.synchronous_full);
  CHECK(c.store.keep_delivered_s == 7200);
  CHECK(c.store.keep_dead_s == 7 * 86400);
  CHECK(c.ipc.socket == "/tmp/x/s.sock");
  CHECK(c.ipc.mode == 0600);
  CHECK(c.ipc.max_request_bytes == 2u << 20);
  CHECK(c.ipc.max_connections == 50);
  CHECK(c.ipc.max_batch == 500);
  CHECK(c.ipc.allowed_uids == std::vector<uid_t>{1000, 1001});
  CHECK(c.delivery.max_age_s == 86400);
  CHECK(c.delivery.backoff_base_s == 0.5);
  CHECK(c.delivery.backoff_cap_s == 90);
  CHECK(c.delivery.shutdown_timeout_s == 3);
  CHECK(c.log_level == LogLevel::kDebug);
  CHECK(c.metrics.textfile == "/tmp/x/outboxd.prom");
  CHECK(c.metrics.interval_s == 30);
  REQUIRE(c.providers.size() == 2);
  const auto& novu = c.providers[0];
  CHECK(novu.settings.name == "novu");
  CHECK(novu.settings.type == "novu");
  CHECK(novu.settings.values.at("api_key") == "nk-secret-1");
  CHECK(novu.limits.at("rate_limit").per_second() == 100);
  CHECK(novu.concurrency == 8);
  CHECK(novu.timeout_s == 15);
  const auto& reco = c.providers[1];
  CHECK(reco.settings.type == "moengage");
  CHECK(reco.settings.values.at("api_key") == "moe-secret-2");
  CHECK(reco.limits.at("events_rate_limit").count == 600);
  CHECK(reco.limits.at("events_rate_limit").period_s == 60);
  CHECK(std::find(c.secrets.begin(), c.secrets.end(), "nk-secret-1") != c.secrets.end());
  CHECK(std::find(c.secrets.begin(), c.secrets.end(), "moe-secret-2") != c.secrets.end());
  unsetenv("CREDENTIALS_DIRECTORY");
}

TEST_CASE("built-in defaults outside systemd live in ./outboxd-data") {
  unsetenv("INVOCATION_ID");
  unsetenv("NOTIFY_SOCKET");
  unsetenv("STATE_DIRECTORY");
  unsetenv("RUNTIME_DIRECTORY");
  Config c = DefaultConfig();
  CHECK(c.store.path == "outboxd-data/outbox.db");
  CHECK(c.ipc.socket == "outboxd-data/outboxd.sock");
  CHECK(c.providers.empty());
  CHECK(c.store.synchronous_full);
  CHECK(c.store.max_size == 256ll << 20);
  setenv("STATE_DIRECTORY", "/var/lib/outboxd", 1);
  setenv("RUNTIME_DIRECTORY", "/run/outboxd", 1);
  CHECK(DefaultConfig().store.path == "/var/lib/outboxd/outbox.db");
  CHECK(DefaultConfig().ipc.socket == "/run/outboxd/outboxd.sock");
  unsetenv("STATE_DIRECTORY");
  unsetenv("RUNTIME_DIRECTORY");
}

TEST_CASE("each kind of mistake stops the load with file, line, key and reason") {
  TempDir dir;
  SUBCASE("unknown section") {
    std::string e = LoadError(dir, "[stroe]\npath = \"x\"\n");
    CHECK(e.find(":1: key 'stroe': unknown section") != std::string::npos);
  }
  SUBCASE("unknown key") {
    std::string e = LoadError(dir, "[store]\npath = \"x\"\nmax_szie = \"1MiB\"\n");
    CHECK(e.find(":3: key 'store.max_szie': unknown key") != std::string::npos);
  }
  SUBCASE("wrong type") {
    std::string e = LoadError(dir, "[ipc]\nmax_connections = \"many\"\n");
    CHECK(e.find("key 'ipc.max_connections': must be an integer") != std::string::npos);
  }
  SUBCASE("bad duration") {
    std::string e = LoadError(dir, "[delivery]\nmax_age = \"7 days\"\n");
    CHECK(e.find("key 'delivery.max_age'") != std::string::npos);
    CHECK(e.find("unknown unit") != std::string::npos);
  }
  SUBCASE("bad size") {
    std::string e = LoadError(dir, "[store]\nmax_size = \"lots\"\n");
    CHECK(e.find("key 'store.max_size': \"lots\" is not a size") != std::string::npos);
  }
  SUBCASE("bad rate") {
    std::string e = LoadError(
        dir, "[providers.hook]\ntype = \"webhook\"\nurl = \"https://x\"\nrate_limit = \"fast\"\n");
    CHECK(e.find(":4: key 'providers.hook.rate_limit': \"fast\" is not a rate") !=
          std::string::npos);
  }
  SUBCASE("bad mode") {
    std::string e = LoadError(dir, "[ipc]\nmode = \"rw-rw----\"\n");
    CHECK(e.find("key 'ipc.mode': must be an octal mode") != std::string::npos);
  }
  SUBCASE("bad enum") {
    std::string e = LoadError(dir, "[store]\nsynchronous = \"off\"\n");
    CHECK(e.find("key 'store.synchronous': must be \"full\" or \"normal\"") != std::string::npos);
  }
  SUBCASE("unknown provider type") {
    std::string e = LoadError(dir, "[providers.x]\ntype = \"carrier_pigeon\"\n");
    CHECK(e.find("key 'providers.x.type': unknown provider type \"carrier_pigeon\"") !=
          std::string::npos);
  }
  SUBCASE("unknown provider key") {
    std::string e = LoadError(dir, "[providers.novu]\napi_key = \"k\"\napi_secret = \"s\"\n");
    CHECK(e.find(":3: key 'providers.novu.api_secret': unknown key for type novu") !=
          std::string::npos);
  }
  SUBCASE("missing required key") {
    std::string e = LoadError(dir, "[providers.novu]\nrate_limit = \"5/s\"\n");
    CHECK(e.find("key 'providers.novu.api_key': is required for type novu") != std::string::npos);
  }
  SUBCASE("a provider's own rule") {
    std::string e =
        LoadError(dir, "[providers.beams]\ntype = \"pusher_beams\"\ninstance_id = \"abc\"\n");
    CHECK(e.find("instance_id: must be a UUID") != std::string::npos);
  }
  SUBCASE("secret file missing") {
    setenv("CREDENTIALS_DIRECTORY", dir.path().c_str(), 1);
    std::string e = LoadError(dir, "[providers.novu]\napi_key = \"file:nope\"\n");
    CHECK(e.find("key 'providers.novu.api_key': cannot read secret file") != std::string::npos);
    unsetenv("CREDENTIALS_DIRECTORY");
  }
  SUBCASE("relative secret without a credentials directory") {
    unsetenv("CREDENTIALS_DIRECTORY");
    std::string e = LoadError(dir, "[providers.novu]\napi_key = \"file:novu_key\"\n");
    CHECK(e.find("$CREDENTIALS_DIRECTORY is not set") != std::string::npos);
  }
  SUBCASE("env secret missing") {
    unsetenv("OUTBOXD_NOT_SET");
    std::string e = LoadError(dir, "[providers.novu]\napi_key = \"env:OUTBOXD_NOT_SET\"\n");
    CHECK(e.find("environment variable OUTBOXD_NOT_SET is not set") != std::string::npos);
  }
  SUBCASE("not TOML") {
    std::string e = LoadError(dir, "[store\npath = \n");
    CHECK(e.size() > 20);
  }
  SUBCASE("cap shorter than base") {
    std::string e = LoadError(dir, "[delivery]\nbackoff_base = \"10s\"\nbackoff_cap = \"1s\"\n");
    CHECK(e.find("backoff_cap") != std::string::npos);
  }
}

TEST_CASE("no error message ever carries a secret's value") {
  TempDir dir;
  // The secret is valid for its key, but the provider refuses another key:
  // the message names keys, never values.
  std::string e = LoadError(dir,
                            "[providers.hook]\ntype = \"webhook\"\nurl = \"ftp://nope\"\n"
                            "[providers.hook.headers]\nAuthorization = \"Bearer TOPSECRET-123\"\n");
  CHECK(e.find("TOPSECRET") == std::string::npos);
  setenv("OUTBOXD_TEST_SECRET", "TOPSECRET-456", 1);
  e = LoadError(dir,
                "[providers.novu]\napi_key = \"env:OUTBOXD_TEST_SECRET\"\nregion = \"mars\"\n");
  CHECK(e.find("TOPSECRET") == std::string::npos);
  CHECK(e.find("region") != std::string::npos);
}

TEST_CASE("a missing file is named") {
  Config c;
  std::string error;
  CHECK_FALSE(LoadConfig("/nonexistent/outboxd.toml", &c, &error));
  CHECK(error.find("/nonexistent/outboxd.toml: cannot read") == 0);
}

}  // namespace
}  // namespace outboxd
