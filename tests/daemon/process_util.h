// Helpers for tests that run outboxd as a process next to the simulator.
#ifndef OUTBOXD_TESTS_DAEMON_PROCESS_UTIL_H_
#define OUTBOXD_TESTS_DAEMON_PROCESS_UTIL_H_

#include <rapidjson/document.h>

#include <string>

#include "tests/common/daemon_process.h"

namespace outboxd::testing {

// A configuration with every provider type pointed at `base` (the
// simulator), using its default credentials.
inline std::string AllProvidersConfig(const std::string& dir, const std::string& base,
                                      const std::string& extra = "") {
  return "[store]\npath = \"" + dir +
         "/outbox.db\"\n"
         "[ipc]\nsocket = \"" +
         dir +
         "/s.sock\"\n"
         "[delivery]\nbackoff_base = \"100ms\"\nbackoff_cap = \"1s\"\nshutdown_timeout = \"2s\"\n"
         "[log]\nlevel = \"debug\"\n" +
         extra + "[providers.moost]\nbase_url = \"" + base +
         "\"\nclient_id = \"moost-client\"\n"
         "client_secret = \"moost-secret\"\ntimeout = \"2s\"\n"
         "[providers.novu]\nbase_url = \"" +
         base +
         "\"\napi_key = \"novu-key\"\ntimeout = \"2s\"\n"
         "[providers.moengage]\nbase_url = \"" +
         base +
         "\"\nworkspace_id = \"WS123\"\n"
         "api_key = \"moe-key\"\ndata_api_key = \"moe-data-key\"\ntimeout = \"2s\"\n"
         "[providers.ci]\ntype = \"customer_insights\"\nbase_url = \"" +
         base +
         "/\"\n"
         "org_id = \"0f8fad5b-d9cb-469f-a165-70867728950e\"\ntimeout = \"2s\"\n"
         "[providers.beams]\ntype = \"pusher_beams\"\nbase_url = \"" +
         base +
         "\"\n"
         "instance_id = \"97c56dfe-58f5-408b-ab3a-158e51a860f2\"\ntimeout = \"2s\"\n"
         "[providers.hook]\ntype = \"webhook\"\nurl = \"" +
         base +
         "/hook/in\"\ntimeout = \"2s\"\n"
         "[providers.hook.headers]\nX-Api-Token = \"hook-token-secret\"\n";
}

// Polls stats until `pred` holds for the reply or timeout_ms passes.
template <typename Pred>
bool WaitForStats(const std::string& socket, Pred pred, int timeout_ms = 20000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    LineClient c(socket);
    auto r = c.Ask(R"({"op":"stats"})");
    if (r) {
      rapidjson::Document d;
      d.Parse(r->c_str());
      if (!d.HasParseError() && d.IsObject() && d["ok"].GetBool() && pred(d)) return true;
    }
    WaitMs(50);
  }
  return false;
}

inline int64_t StatOf(const rapidjson::Document& d, const char* provider, const char* field) {
  if (!d["providers"].HasMember(provider)) return -1;
  return d["providers"][provider][field].GetInt64();
}

}  // namespace outboxd::testing

#endif  // OUTBOXD_TESTS_DAEMON_PROCESS_UTIL_H_
