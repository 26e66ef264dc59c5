#include "daemon/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "daemon/systemd.h"
#include "daemon/units.h"

namespace outboxd {
namespace {

// One loader run: the file name for messages and the secrets met.
struct Ctx {
  std::string file;
  std::vector<std::string>* secrets;
  std::string error;

  bool Fail(const toml::node& node, const std::string& key, const std::string& reason) {
    error = fmt::format("{}:{}: key '{}': {}", file, node.source().begin.line, key, reason);
    return false;
  }
  bool FailAt(const toml::source_region& where, const std::string& key, const std::string& reason) {
    error = fmt::format("{}:{}: key '{}': {}", file, where.begin.line, key, reason);
    return false;
  }
};

bool GetString(Ctx& c, const toml::node& n, const std::string& key, std::string* out) {
  if (!n.is_string()) return c.Fail(n, key, "must be a string");
  *out = *n.value<std::string>();
  return true;
}

bool GetDuration(Ctx& c, const toml::node& n, const std::string& key, double* out) {
  std::string s, err;
  if (!GetString(c, n, key, &s)) return false;
  if (!ParseDuration(s, out, &err)) return c.Fail(n, key, err);
  return true;
}

bool GetPositiveDuration(Ctx& c, const toml::node& n, const std::string& key, double* out) {
  if (!GetDuration(c, n, key, out)) return false;
  if (*out <= 0) return c.Fail(n, key, "must be longer than zero");
  return true;
}

bool GetInt(Ctx& c, const toml::node& n, const std::string& key, int64_t min, int64_t max,
            int64_t* out) {
  if (!n.is_integer()) return c.Fail(n, key, "must be an integer");
  int64_t v = *n.value<int64_t>();
  if (v < min || v > max) return c.Fail(n, key, fmt::format("must be from {} to {}", min, max));
  *out = v;
  return true;
}

bool GetSize(Ctx& c, const toml::node& n, const std::string& key, int64_t* out) {
  std::string err;
  if (n.is_integer()) {
    *out = *n.value<int64_t>();
  } else {
    std::string s;
    if (!GetString(c, n, key, &s)) return false;
    if (!ParseSize(s, out, &err)) return c.Fail(n, key, err);
  }
  if (*out <= 0) return c.Fail(n, key, "must be larger than zero");
  return true;
}

bool GetIdList(Ctx& c, const toml::node& n, const std::string& key, std::vector<uint32_t>* out) {
  const toml::array* arr = n.as_array();
  if (!arr) return c.Fail(n, key, "must be an array of numeric ids");
  for (const auto& v : *arr) {
    if (!v.is_integer() || *v.value<int64_t>() < 0 || *v.value<int64_t>() > 0xfffffffe) {
      return c.Fail(v, key, "must be an array of numeric ids");
    }
    out->push_back(static_cast<uint32_t>(*v.value<int64_t>()));
  }
  return true;
}

// Resolves "file:NAME" / "env:NAME"; anything else is the literal value.
bool ResolveSecret(Ctx& c, const toml::node& n, const std::string& key, std::string* value) {
  std::string raw = *value;
  if (raw.rfind("file:", 0) == 0) {
    std::string name = raw.substr(5);
    std::string path = name;
    if (name.empty()) return c.Fail(n, key, "file: needs a file name");
    if (name[0] != '/') {
      const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
      if (!dir) {
        return c.Fail(n, key,
                      fmt::format("\"file:{}\" is relative but $CREDENTIALS_DIRECTORY is not set "
                                  "(use LoadCredential= or an absolute path)",
                                  name));
      }
      path = std::string(dir) + "/" + name;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return c.Fail(n, key, fmt::format("cannot read secret file {}", path));
    std::stringstream ss;
    ss << in.rdbuf();
    *value = ss.str();
    while (!value->empty() && (value->back() == '\n' || value->back() == '\r')) value->pop_back();
    if (value->empty()) return c.Fail(n, key, fmt::format("secret file {} is empty", path));
  } else if (raw.rfind("env:", 0) == 0) {
    std::string name = raw.substr(4);
    const char* v = name.empty() ? nullptr : std::getenv(name.c_str());
    if (!v || !*v) {
      return c.Fail(n, key, fmt::format("environment variable {} is not set", name));
    }
    *value = v;
  }
  c.secrets->push_back(*value);
  return true;
}

using Setter = std::function<bool(Ctx&, const toml::node&, const std::string&, Config*)>;
struct Key {
  const char* section;
  const char* name;
  Setter set;
};

// Every key outside [providers], in one table.
const std::vector<Key>& Keys() {
  static const std::vector<Key> keys = {
      {"store", "path",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         if (!GetString(c, n, k, &cfg->store.path)) return false;
         return !cfg->store.path.empty() || c.Fail(n, k, "must not be empty");
       }},
      {"store", "max_size",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         if (!GetSize(c, n, k, &cfg->store.max_size)) return false;
         return cfg->store.max_size >= (64 << 10) || c.Fail(n, k, "must be at least 64KiB");
       }},
      {"store", "synchronous",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         std::string s;
         if (!GetString(c, n, k, &s)) return false;
         if (s != "full" && s != "normal") return c.Fail(n, k, "must be \"full\" or \"normal\"");
         cfg->store.synchronous_full = s == "full";
         return true;
       }},
      {"store", "keep_delivered",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         return GetDuration(c, n, k, &cfg->store.keep_delivered_s);
       }},
      {"store", "keep_dead",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         return GetDuration(c, n, k, &cfg->store.keep_dead_s);
       }},
      {"ipc", "socket",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         if (!GetString(c, n, k, &cfg->ipc.socket)) return false;
         if (cfg->ipc.socket.empty() || cfg->ipc.socket.size() > 107) {
           return c.Fail(n, k, "must be a path of 1 to 107 bytes");
         }
         return true;
       }},
      {"ipc", "mode",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         std::string s;
         if (!GetString(c, n, k, &s)) return false;
         char* end = nullptr;
         long v = std::strtol(s.c_str(), &end, 8);
         if (s.empty() || *end != '\0' || v < 0 || v > 0777) {
           return c.Fail(n, k, "must be an octal mode such as \"0660\"");
         }
         cfg->ipc.mode = static_cast<mode_t>(v);
         return true;
       }},
      {"ipc", "max_request_bytes",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         int64_t v;
         if (!GetSize(c, n, k, &v)) return false;
         if (v < 1024 || v > (64 << 20)) return c.Fail(n, k, "must be from 1KiB to 64MiB");
         cfg->ipc.max_request_bytes = static_cast<size_t>(v);
         return true;
       }},
      {"ipc", "max_connections",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         int64_t v;
         if (!GetInt(c, n, k, 1, 100000, &v)) return false;
         cfg->ipc.max_connections = static_cast<size_t>(v);
         return true;
       }},
      {"ipc", "max_batch",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         int64_t v;
         if (!GetInt(c, n, k, 1, 1000000, &v)) return false;
         cfg->ipc.max_batch = static_cast<size_t>(v);
         return true;
       }},
      {"ipc", "allowed_uids",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         std::vector<uint32_t> ids;
         if (!GetIdList(c, n, k, &ids)) return false;
         cfg->ipc.allowed_uids.assign(ids.begin(), ids.end());
         return true;
       }},
      {"ipc", "allowed_gids",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         std::vector<uint32_t> ids;
         if (!GetIdList(c, n, k, &ids)) return false;
         cfg->ipc.allowed_gids.assign(ids.begin(), ids.end());
         return true;
       }},
      {"delivery", "max_age",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         return GetPositiveDuration(c, n, k, &cfg->delivery.max_age_s);
       }},
      {"delivery", "backoff_base",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         return GetPositiveDuration(c, n, k, &cfg->delivery.backoff_base_s);
       }},
      {"delivery", "backoff_cap",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         return GetPositiveDuration(c, n, k, &cfg->delivery.backoff_cap_s);
       }},
      {"delivery", "shutdown_timeout",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         return GetDuration(c, n, k, &cfg->delivery.shutdown_timeout_s);
       }},
      {"log", "level",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         std::string s;
         if (!GetString(c, n, k, &s)) return false;
         if (!ParseLogLevel(s, &cfg->log_level)) {
           return c.Fail(n, k, "must be one of error, warning, info, debug");
         }
         return true;
       }},
      {"metrics", "textfile",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         return GetString(c, n, k, &cfg->metrics.textfile);
       }},
      {"metrics", "interval",
       [](Ctx& c, const toml::node& n, const std::string& k, Config* cfg) {
         return GetPositiveDuration(c, n, k, &cfg->metrics.interval_s);
       }},
  };
  return keys;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool LoadProvider(Ctx& c, const std::string& name, const toml::table& t, Config* cfg) {
  std::string prefix = "providers." + name;
  ProviderConfig pc;
  pc.settings.name = name;
  pc.settings.type = name;
  if (auto* type = t.get("type")) {
    if (!GetString(c, *type, prefix + ".type", &pc.settings.type)) return false;
  }
  const std::string& type = pc.settings.type;
  auto spec = providers::ProviderKeys(type);
  if (spec.empty()) {
    std::string types;
    for (const char* tname : providers::ProviderTypes())
      types += (types.empty() ? "" : ", ") + std::string(tname);
    return c.FailAt(t.source(), prefix + ".type",
                    fmt::format("unknown provider type \"{}\" (one of {})", type, types));
  }
  for (auto&& [k, v] : t) {
    std::string key(k.str());
    std::string full = prefix + "." + key;
    if (key == "type") continue;
    if (key == "concurrency") {
      int64_t n;
      if (!GetInt(c, v, full, 1, 256, &n)) return false;
      pc.concurrency = static_cast<int>(n);
      pc.settings.values[key] = std::to_string(n);
      continue;
    }
    if (key == "timeout") {
      if (!GetPositiveDuration(c, v, full, &pc.timeout_s)) return false;
      pc.settings.values[key] = fmt::format("{:g}", pc.timeout_s);
      continue;
    }
    if (key == "base_url" || key == "ca_file") {
      std::string s;
      if (!GetString(c, v, full, &s)) return false;
      if (key == "base_url" && s.rfind("https://", 0) != 0 && s.rfind("http://", 0) != 0) {
        return c.Fail(v, full, "must start with https:// or http://");
      }
      pc.settings.values[key] = s;
      continue;
    }
    const providers::KeySpec* ks = nullptr;
    for (const auto& s : spec) {
      if (key == s.name) ks = &s;
    }
    if (!ks && key != "rate_limit") {
      std::string known = "type, base_url, rate_limit, concurrency, timeout, ca_file";
      for (const auto& s : spec) known += std::string(", ") + s.name;
      return c.Fail(v, full, fmt::format("unknown key for type {} (known: {})", type, known));
    }
    if (ks && ks->table) {
      const toml::table* tt = v.as_table();
      if (!tt) return c.Fail(v, full, "must be a table of strings");
      auto& out = pc.settings.tables[key];
      for (auto&& [hk, hv] : *tt) {
        std::string hfull = full + "." + std::string(hk.str());
        std::string s;
        if (!GetString(c, hv, hfull, &s)) return false;
        if (ks->secret && !ResolveSecret(c, hv, hfull, &s)) return false;
        out[std::string(hk.str())] = s;
      }
      continue;
    }
    std::string s;
    if (!GetString(c, v, full, &s)) return false;
    if (EndsWith(key, "rate_limit")) {
      providers::Rate rate;
      std::string err;
      if (!ParseRate(s, &rate, &err)) return c.Fail(v, full, err);
      pc.limits[key] = rate;
    }
    if (ks && ks->secret && !ResolveSecret(c, v, full, &s)) return false;
    pc.settings.values[key] = s;
  }
  for (const auto& s : spec) {
    if (s.required && !pc.settings.values.count(s.name) && !pc.settings.tables.count(s.name)) {
      return c.FailAt(t.source(), prefix + "." + s.name,
                      fmt::format("is required for type {} ({})", type, s.help));
    }
  }
  // The provider's own checks (formats, combinations) run now, so a bad
  // file never starts.
  std::string err;
  if (!providers::NewProvider(pc.settings, &err)) {
    return c.FailAt(t.source(), prefix, err);
  }
  cfg->providers.push_back(std::move(pc));
  return true;
}

bool LoadTable(Ctx& c, const toml::table& root, Config* cfg) {
  static const std::set<std::string> sections = {"store", "ipc",     "delivery",
                                                 "log",   "metrics", "providers"};
  for (auto&& [k, v] : root) {
    std::string section(k.str());
    if (!sections.count(section)) {
      return c.Fail(v, section,
                    "unknown section (known: store, ipc, delivery, log, metrics, providers)");
    }
    const toml::table* t = v.as_table();
    if (!t) return c.Fail(v, section, "must be a table");
    if (section == "providers") {
      for (auto&& [pk, pv] : *t) {
        std::string name(pk.str());
        const toml::table* pt = pv.as_table();
        if (!pt) return c.Fail(pv, "providers." + name, "must be a table");
        if (name.empty() || name.size() > 64 ||
            name.find_first_not_of(
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
                std::string::npos) {
          return c.Fail(pv, "providers." + name,
                        "provider names use letters, digits, _ and - (1 to 64)");
        }
        if (!LoadProvider(c, name, *pt, cfg)) return false;
      }
      continue;
    }
    for (auto&& [kk, kv] : *t) {
      std::string key(kk.str());
      std::string full = section + "." + key;
      const Key* found = nullptr;
      for (const auto& spec : Keys()) {
        if (section == spec.section && key == spec.name) found = &spec;
      }
      if (!found) {
        std::string known;
        for (const auto& spec : Keys()) {
          if (section == spec.section)
            known += (known.empty() ? "" : ", ") + std::string(spec.name);
        }
        return c.Fail(kv, full, fmt::format("unknown key (known in [{}]: {})", section, known));
      }
      if (!found->set(c, kv, full, cfg)) return false;
    }
  }
  if (cfg->delivery.backoff_cap_s < cfg->delivery.backoff_base_s) {
    c.error = fmt::format("{}: key 'delivery.backoff_cap': must not be shorter than backoff_base",
                          c.file);
    return false;
  }
  return true;
}

}  // namespace

std::string DefaultDatabasePath() {
  if (const char* d = std::getenv("STATE_DIRECTORY")) {
    std::string dir(d);
    return dir.substr(0, dir.find(':')) + "/outbox.db";
  }
  if (UnderSystemd()) return "/var/lib/outboxd/outbox.db";
  return "outboxd-data/outbox.db";
}

std::string DefaultSocketPath() {
  if (const char* d = std::getenv("RUNTIME_DIRECTORY")) {
    std::string dir(d);
    return dir.substr(0, dir.find(':')) + "/outboxd.sock";
  }
  if (UnderSystemd()) return "/run/outboxd/outboxd.sock";
  return "outboxd-data/outboxd.sock";
}

Config DefaultConfig() {
  Config c;
  c.store.path = DefaultDatabasePath();
  c.ipc.socket = DefaultSocketPath();
  return c;
}

bool LoadConfig(const std::string& path, Config* config, std::string* error) {
  Config cfg = DefaultConfig();
  cfg.source = path;
  Ctx c{path, &cfg.secrets, {}};
  if (std::ifstream probe(path); !probe) {
    *error = fmt::format("{}: cannot read the configuration file: {}", path, std::strerror(errno));
    return false;
  }
  toml::table root;
#if TOML_EXCEPTIONS
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    *error = fmt::format("{}:{}: {}", path, e.source().begin.line, e.description());
    return false;
  }
#else
  toml::parse_result r = toml::parse_file(path);
  if (!r) {
    *error = fmt::format("{}:{}: {}", path, r.error().source().begin.line, r.error().description());
    return false;
  }
  root = std::move(r).table();
#endif
  if (!LoadTable(c, root, &cfg)) {
    *error = c.error;
    return false;
  }
  *config = std::move(cfg);
  return true;
}

}  // namespace outboxd
