// outboxctl: control and inspect a running outboxd over its socket.
// Exit codes: 0 ok, 1 the daemon answered an error, 2 usage, 3 unreachable.
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/ctl_client.h"

namespace {

using rapidjson::Document;
using rapidjson::Value;

constexpr int kOk = 0, kDaemonError = 1, kUsage = 2, kUnreachable = 3;
constexpr size_t kBatch = 1000;  // events per enqueue request from stdin
constexpr size_t kWindow = 8;    // enqueue requests in flight

struct Args {
  std::string socket;
  bool json = false;
  std::string command;
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;  // --state dead -> {"state","dead"}
  bool help = false;
};

struct Command {
  const char* name;
  const char* usage;
  const char* help;
  std::vector<std::string> options;  // accepted --options (with a value)
  size_t min_args, max_args;
  int (*run)(const Args&);
};

std::string Quote(std::string_view s) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return sb.GetString();
}

std::string SocketPath(const Args& a) {
  if (!a.socket.empty()) return a.socket;
  if (const char* env = std::getenv("OUTBOXD_SOCKET")) return env;
  return outboxd::DefaultSocketPath();
}

// Sends one request; prints errors; fills `reply`. Returns an exit code.
int Call(const Args& a, const std::string& request, Document* reply, std::string* raw) {
  outboxd::CtlClient c;
  std::string error;
  if (!c.Connect(SocketPath(a), &error)) {
    std::fprintf(stderr, "outboxctl: %s\n", error.c_str());
    return kUnreachable;
  }
  if (!c.Send(request)) {
    std::fprintf(stderr, "outboxctl: the connection to outboxd broke\n");
    return kUnreachable;
  }
  auto line = c.Read();
  if (!line) {
    std::fprintf(stderr, "outboxctl: outboxd closed the connection without answering\n");
    return kUnreachable;
  }
  *raw = *line;
  reply->Parse(line->c_str(), line->size());
  if (reply->HasParseError() || !reply->IsObject() || !reply->HasMember("ok")) {
    std::fprintf(stderr, "outboxctl: unreadable answer: %s\n", line->c_str());
    return kDaemonError;
  }
  if (!(*reply)["ok"].GetBool()) {
    const Value& e = (*reply)["error"];
    std::fprintf(stderr, "outboxctl: %s: %s\n", e["code"].GetString(), e["message"].GetString());
    return kDaemonError;
  }
  return kOk;
}

// Runs a request and prints the raw reply with --json, or calls `human`.
int Simple(const Args& a, const std::string& request,
           const std::function<void(const Document&)>& human) {
  Document reply;
  std::string raw;
  int rc = Call(a, request, &reply, &raw);
  if (rc != kOk) return rc;
  if (a.json)
    std::printf("%s\n", raw.c_str());
  else
    human(reply);
  return kOk;
}

std::string Age(double seconds) {
  if (seconds <= 0) return "-";
  if (seconds < 120) return fmt::format("{:.0f}s", seconds);
  if (seconds < 7200) return fmt::format("{:.0f}m", seconds / 60);
  if (seconds < 172800) return fmt::format("{:.1f}h", seconds / 3600);
  return fmt::format("{:.1f}d", seconds / 86400);
}

std::string When(double epoch) {
  if (epoch <= 0) return "-";
  double delta = epoch - static_cast<double>(std::time(nullptr));
  if (delta <= 0) return "now";
  return "in " + Age(delta);
}

std::string Str(const Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return "";
  if (it->value.IsString()) return it->value.GetString();
  if (it->value.IsInt64()) return std::to_string(it->value.GetInt64());
  if (it->value.IsNumber()) return fmt::format("{:.3f}", it->value.GetDouble());
  return "";
}

double Num(const Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  return it != obj.MemberEnd() && it->value.IsNumber() ? it->value.GetDouble() : 0;
}

bool ParseId(const std::string& s, int64_t* id) {
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v <= 0) return false;
  *id = v;
  return true;
}

// Adds --ids/--provider/--state selectors to a request under construction.
bool Selectors(const Args& a, std::string* req) {
  if (auto it = a.options.find("ids"); it != a.options.end()) {
    std::string ids;
    size_t start = 0;
    const std::string& s = it->second;
    while (start <= s.size()) {
      size_t comma = s.find(',', start);
      std::string one =
          s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      int64_t id;
      if (!ParseId(one, &id)) {
        std::fprintf(stderr, "outboxctl: --ids takes ids separated by commas, not \"%s\"\n",
                     s.c_str());
        return false;
      }
      if (!ids.empty()) ids += ',';
      ids += std::to_string(id);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    *req += ",\"ids\":[" + ids + "]";
  }
  if (auto it = a.options.find("provider"); it != a.options.end()) {
    *req += ",\"provider\":" + Quote(it->second);
  }
  if (auto it = a.options.find("state"); it != a.options.end()) {
    *req += ",\"state\":" + Quote(it->second);
  }
  return true;
}

int Ping(const Args& a) {
  return Simple(a, R"({"op":"ping"})", [](const Document& r) {
    std::printf("outboxd %s is up\n", r["version"].GetString());
  });
}

int EnqueueStdin(const Args& a, const std::string& provider) {
  outboxd::CtlClient c;
  std::string error;
  if (!c.Connect(SocketPath(a), &error)) {
    std::fprintf(stderr, "outboxctl: %s\n", error.c_str());
    return kUnreachable;
  }
  std::deque<std::pair<size_t, size_t>> window;  // (first line, count) per request
  size_t line_no = 0, sent_events = 0, enqueued = 0, duplicates = 0;
  int rc = kOk;
  auto read_reply = [&]() -> bool {
    auto line = c.Read();
    if (!line) {
      std::fprintf(stderr, "outboxctl: outboxd closed the connection\n");
      rc = kUnreachable;
      return false;
    }
    auto [first, count] = window.front();
    window.pop_front();
    Document r;
    r.Parse(line->c_str(), line->size());
    if (r.HasParseError() || !r.IsObject() || !r["ok"].GetBool()) {
      std::string msg =
          r.IsObject() && r.HasMember("error") ? r["error"]["message"].GetString() : *line;
      std::string code =
          r.IsObject() && r.HasMember("error") ? r["error"]["code"].GetString() : "bad answer";
      std::fprintf(stderr, "outboxctl: lines %zu-%zu not enqueued: %s: %s\n", first,
                   first + count - 1, code.c_str(), msg.c_str());
      rc = kDaemonError;
      return false;
    }
    enqueued += count;
    if (r.HasMember("duplicates")) duplicates += r["duplicates"].Size();
    return true;
  };
  std::string events;
  size_t in_batch = 0, first_line = 1;
  auto flush = [&]() -> bool {
    if (in_batch == 0) return true;
    std::string req =
        "{\"op\":\"enqueue\",\"provider\":" + Quote(provider) + ",\"events\":[" + events + "]}";
    if (!c.Send(req)) {
      std::fprintf(stderr, "outboxctl: the connection to outboxd broke\n");
      rc = kUnreachable;
      return false;
    }
    window.push_back({first_line, in_batch});
    sent_events += in_batch;
    events.clear();
    in_batch = 0;
    while (window.size() >= kWindow) {
      if (!read_reply()) return false;
    }
    return true;
  };
  std::string line;
  bool ok = true;
  while (ok && std::getline(std::cin, line)) {
    ++line_no;
    if (line.empty()) continue;
    Document d;
    d.Parse(line.c_str(), line.size());
    if (d.HasParseError() || !d.IsObject()) {
      std::fprintf(stderr, "outboxctl: line %zu: not a JSON object\n", line_no);
      rc = kUsage;
      ok = false;
      break;
    }
    if (in_batch == 0) first_line = line_no;
    events += (in_batch ? "," : "") + line;
    if (++in_batch == kBatch) ok = flush();
  }
  if (ok) ok = flush();
  while (ok && !window.empty()) ok = read_reply();
  if (a.json) {
    std::printf("{\"enqueued\":%zu,\"duplicates\":%zu}\n", enqueued, duplicates);
  } else {
    std::printf("%zu events enqueued (%zu duplicates)\n", enqueued, duplicates);
  }
  return rc;
}

int Enqueue(const Args& a) {
  const std::string& provider = a.positional[0];
  if (a.positional.size() < 2 || a.positional[1] == "-") return EnqueueStdin(a, provider);
  std::string req =
      "{\"op\":\"enqueue\",\"provider\":" + Quote(provider) + ",\"event\":" + a.positional[1];
  if (auto it = a.options.find("key"); it != a.options.end())
    req += ",\"key\":" + Quote(it->second);
  req += "}";
  Document check;
  check.Parse(a.positional[1].c_str());
  if (check.HasParseError() || !check.IsObject()) {
    std::fprintf(stderr, "outboxctl: the event must be one JSON object\n");
    return kUsage;
  }
  return Simple(a, req, [](const Document& r) {
    std::printf("%lld%s\n", static_cast<long long>(r["id"].GetInt64()),
                r["duplicate"].GetBool() ? " (duplicate)" : "");
  });
}

void PrintEvent(const Value& e) {
  std::printf("id:              %lld\n", static_cast<long long>(e["id"].GetInt64()));
  std::printf("provider:        %s\n", e["provider"].GetString());
  if (e.HasMember("key")) std::printf("key:             %s\n", e["key"].GetString());
  std::printf("state:           %s\n", e["state"].GetString());
  std::printf("attempts:        %d\n", e["attempts"].GetInt());
  std::printf("created:         %s ago\n",
              Age(static_cast<double>(std::time(nullptr)) - Num(e, "created_at")).c_str());
  if (std::string(e["state"].GetString()) == "pending") {
    std::printf("next attempt:    %s\n", When(Num(e, "next_attempt_at")).c_str());
  }
  if (e["last_status"].GetInt() != 0)
    std::printf("last status:     %d\n", e["last_status"].GetInt());
  if (!Str(e, "last_error").empty())
    std::printf("last error:      %s\n", Str(e, "last_error").c_str());
  if (e.HasMember("response")) std::printf("response:        %s\n", e["response"].GetString());
  if (e.HasMember("body")) std::printf("body:            %s\n", e["body"].GetString());
}

int Get(const Args& a) {
  int64_t id;
  if (!ParseId(a.positional[0], &id)) {
    std::fprintf(stderr, "outboxctl: get takes a positive event id\n");
    return kUsage;
  }
  return Simple(a, fmt::format(R"({{"op":"get","id":{}}})", id),
                [](const Document& r) { PrintEvent(r["event"]); });
}

int List(const Args& a) {
  std::string req = R"({"op":"list")";
  if (!Selectors(a, &req)) return kUsage;
  int64_t limit = 100, after = 0;
  if (auto it = a.options.find("limit"); it != a.options.end() && !ParseId(it->second, &limit)) {
    std::fprintf(stderr, "outboxctl: --limit takes a number from 1 to 1000\n");
    return kUsage;
  }
  if (auto it = a.options.find("after"); it != a.options.end() && !ParseId(it->second, &after)) {
    std::fprintf(stderr, "outboxctl: --after takes an event id\n");
    return kUsage;
  }
  req += fmt::format(R"(,"limit":{},"after_id":{}}})", limit, after);
  Document reply;
  std::string raw;
  int rc = Call(a, req, &reply, &raw);
  if (rc != kOk) return rc;
  const Value& events = reply["events"];
  if (a.json) {
    // One event per line: an NDJSON export.
    for (const auto& e : events.GetArray()) {
      rapidjson::StringBuffer sb;
      rapidjson::Writer<rapidjson::StringBuffer> w(sb);
      e.Accept(w);
      std::printf("%s\n", sb.GetString());
    }
    return kOk;
  }
  std::printf("%-10s %-16s %-10s %8s %6s  %s\n", "ID", "PROVIDER", "STATE", "ATTEMPTS", "STATUS",
              "LAST ERROR");
  for (const auto& e : events.GetArray()) {
    std::printf("%-10lld %-16s %-10s %8d %6d  %s\n", static_cast<long long>(e["id"].GetInt64()),
                e["provider"].GetString(), e["state"].GetString(), e["attempts"].GetInt(),
                e["last_status"].GetInt(), Str(e, "last_error").c_str());
  }
  return kOk;
}

int Stats(const Args& a) {
  return Simple(a, R"({"op":"stats"})", [](const Document& r) {
    std::printf("%-16s %9s %8s %10s %8s %8s %-13s %-12s %s\n", "PROVIDER", "PENDING", "INFLIGHT",
                "DELIVERED", "DEAD", "OLDEST", "LANE", "NEXT", "LAST ERROR");
    for (const auto& m : r["providers"].GetObject()) {
      const Value& p = m.value;
      std::string lane = Str(p, "state");
      if (Num(p, "paused_until") > 0) {
        lane += ' ';
        lane += When(Num(p, "paused_until"));
      }
      std::printf(
          "%-16s %9lld %8lld %10lld %8lld %8s %-13s %-12s %s\n", m.name.GetString(),
          static_cast<long long>(Num(p, "pending")), static_cast<long long>(Num(p, "inflight")),
          static_cast<long long>(Num(p, "delivered")), static_cast<long long>(Num(p, "dead")),
          Age(Num(p, "oldest_pending_age_s")).c_str(), lane.c_str(),
          When(Num(p, "next_attempt_at")).c_str(), Str(p, "last_error").c_str());
    }
    std::printf("database: %.1f MiB in use\n", Num(r, "db_bytes") / (1 << 20));
  });
}

int RetryOrPurge(const Args& a, const char* op) {
  std::string req = fmt::format(R"({{"op":"{}")", op);
  if (!Selectors(a, &req)) return kUsage;
  if (req.find(',') == std::string::npos) {
    std::fprintf(stderr, "outboxctl: %s needs --ids, --provider or --state\n", op);
    return kUsage;
  }
  req += "}";
  return Simple(a, req, [op](const Document& r) {
    std::printf("%lld events %s\n", static_cast<long long>(r["count"].GetInt64()),
                std::string(op) == "retry" ? "retried" : "purged");
  });
}
int Retry(const Args& a) { return RetryOrPurge(a, "retry"); }
int Purge(const Args& a) { return RetryOrPurge(a, "purge"); }

int PauseOrResume(const Args& a, const char* op) {
  return Simple(a, fmt::format(R"({{"op":"{}","provider":{}}})", op, Quote(a.positional[0])),
                [&](const Document&) {
                  std::printf("%s %s\n", a.positional[0].c_str(),
                              std::string(op) == "pause" ? "paused" : "resumed");
                });
}
int Pause(const Args& a) { return PauseOrResume(a, "pause"); }
int Resume(const Args& a) { return PauseOrResume(a, "resume"); }

int Metrics(const Args& a) {
  Document reply;
  std::string raw;
  int rc = Call(a, R"({"op":"metrics"})", &reply, &raw);
  if (rc != kOk) return rc;
  if (a.json)
    std::printf("%s\n", raw.c_str());
  else
    std::fputs(reply["text"].GetString(), stdout);
  return kOk;
}

const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = {
      {"ping", "ping", "Check that outboxd answers.", {}, 0, 0, Ping},
      {"enqueue",
       "enqueue PROVIDER (JSON [--key KEY] | -)",
       "Enqueue one event, or with -, one event per line of standard input, in batches.",
       {"key"},
       1,
       2,
       Enqueue},
      {"get", "get ID", "Show one event.", {}, 1, 1, Get},
      {"list",
       "list [--state S] [--provider P] [--limit N] [--after ID]",
       "List events by id (with --json: NDJSON, one event per line).",
       {"state", "provider", "limit", "after", "ids"},
       0,
       0,
       List},
      {"stats", "stats", "Show queue depth and lane state per provider.", {}, 0, 0, Stats},
      {"retry",
       "retry (--ids 1,2,3 | --provider P [--state S])",
       "Make dead events pending again.",
       {"ids", "provider", "state"},
       0,
       0,
       Retry},
      {"purge",
       "purge (--ids 1,2,3 | --provider P | --state S)",
       "Delete events that are not in flight.",
       {"ids", "provider", "state"},
       0,
       0,
       Purge},
      {"pause", "pause PROVIDER", "Stop delivering to a provider.", {}, 1, 1, Pause},
      {"resume", "resume PROVIDER", "Resume delivering to a provider.", {}, 1, 1, Resume},
      {"metrics", "metrics", "Print metrics in the Prometheus text format.", {}, 0, 0, Metrics},
  };
  return commands;
}

void Usage(FILE* out) {
  std::fprintf(out, "usage: outboxctl [-s SOCKET] [--json] COMMAND [ARGS]\n\ncommands:\n");
  for (const auto& c : Commands()) std::fprintf(out, "  %-58s %s\n", c.usage, c.help);
  std::fprintf(out,
               "\nThe socket defaults to $OUTBOXD_SOCKET, else %s.\n"
               "Exit codes: 0 ok, 1 the daemon answered an error, 2 usage, 3 unreachable.\n",
               outboxd::DefaultSocketPath().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (a.command.empty() && (s == "-s" || s == "--socket")) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "outboxctl: %s needs a path\n", s.c_str());
        return kUsage;
      }
      a.socket = argv[++i];
    } else if (s == "--json") {
      a.json = true;
    } else if (s == "-h" || s == "--help") {
      a.help = true;
    } else if (a.command.empty() && s.size() > 1 && s[0] == '-') {
      std::fprintf(stderr, "outboxctl: unknown option %s\n", s.c_str());
      Usage(stderr);
      return kUsage;
    } else if (a.command.empty()) {
      a.command = s;
    } else {
      rest.push_back(s);
    }
  }
  if (a.command.empty()) {
    Usage(a.help ? stdout : stderr);
    return a.help ? kOk : kUsage;
  }
  const Command* cmd = nullptr;
  for (const auto& c : Commands()) {
    if (a.command == c.name) cmd = &c;
  }
  if (!cmd) {
    std::fprintf(stderr, "outboxctl: unknown command \"%s\"\n", a.command.c_str());
    Usage(stderr);
    return kUsage;
  }
  if (a.help) {
    std::printf("usage: outboxctl [-s SOCKET] [--json] %s\n%s\n", cmd->usage, cmd->help);
    return kOk;
  }
  for (size_t i = 0; i < rest.size(); ++i) {
    const std::string& s = rest[i];
    if (s.rfind("--", 0) == 0 && s.size() > 2) {
      std::string name = s.substr(2);
      bool known = false;
      for (const auto& o : cmd->options) known |= o == name;
      if (!known || i + 1 >= rest.size()) {
        std::fprintf(
            stderr, "outboxctl: %s: %s\nusage: outboxctl %s\n", cmd->name,
            known ? ("--" + name + " needs a value").c_str() : ("unknown option " + s).c_str(),
            cmd->usage);
        return kUsage;
      }
      a.options[name] = rest[++i];
    } else {
      a.positional.push_back(s);
    }
  }
  if (a.positional.size() < cmd->min_args || a.positional.size() > cmd->max_args) {
    std::fprintf(stderr, "usage: outboxctl %s\n", cmd->usage);
    return kUsage;
  }
  return cmd->run(a);
}
