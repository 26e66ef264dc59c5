// libFuzzer target: a socket request line through parsing and every
// provider's validation.
#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "daemon/protocol.h"
#include "providers/provider.h"

namespace {

std::vector<std::unique_ptr<outboxd::providers::Provider>> MakeProviders() {
  using S = outboxd::providers::ProviderSettings;
  std::vector<S> settings = {
      {"moost", "moost", {{"token", "t"}}, {}},
      {"novu", "novu", {{"api_key", "k"}}, {}},
      {"moengage",
       "moengage",
       {{"workspace_id", "W"}, {"api_key", "k"}, {"data_api_key", "d"}, {"data_center", "01"}},
       {}},
      {"ci",
       "customer_insights",
       {{"public_endpoint", "https://x/"}, {"org_id", "0f8fad5b-d9cb-469f-a165-70867728950e"}},
       {}},
      {"beams", "pusher_beams", {{"instance_id", "97c56dfe-58f5-408b-ab3a-158e51a860f2"}}, {}},
      {"hook", "webhook", {{"url", "https://x/"}}, {}},
  };
  std::vector<std::unique_ptr<outboxd::providers::Provider>> out;
  for (const auto& s : settings) {
    std::string error;
    out.push_back(outboxd::providers::NewProvider(s, &error));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto providers = MakeProviders();
  std::string_view line(reinterpret_cast<const char*>(data), size);
  rapidjson::Document doc;
  std::string error;
  if (!outboxd::ParseRequestLine(line, &doc, &error)) return 0;
  const rapidjson::Value* event = nullptr;
  if (auto it = doc.FindMember("event"); it != doc.MemberEnd()) event = &it->value;
  if (!event || !event->IsObject()) return 0;
  for (auto& p : providers) {
    outboxd::providers::Validated v;
    std::string err;
    if (p->Validate(*event, "key", 1.7e9, &v, &err)) {
      outboxd::providers::StoredEvent e;
      e.route = v.route;
      e.body = v.body;
      (void)p->Build(e, 1.7e9);
      (void)p->EndpointOf(e);
    }
  }
  return 0;
}
