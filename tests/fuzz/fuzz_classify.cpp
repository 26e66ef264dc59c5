// libFuzzer target: classification of provider answers. Input: two bytes of
// status, then header lines ("Name: value\n"), a blank line, the body.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "providers/provider.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using outboxd::providers::ProviderSettings;
  static std::vector<std::unique_ptr<outboxd::providers::Provider>> providers = [] {
    std::vector<ProviderSettings> settings = {
        {"moost", "moost", {{"client_id", "c"}, {"client_secret", "s"}}, {}},
        {"novu", "novu", {{"api_key", "k"}}, {}},
        {"moengage",
         "moengage",
         {{"workspace_id", "W"}, {"api_key", "k"}, {"data_center", "01"}},
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
      std::string e;
      out.push_back(outboxd::providers::NewProvider(s, &e));
    }
    return out;
  }();
  if (size < 2) return 0;
  outboxd::providers::HttpResponse r;
  r.status = (data[0] << 8 | data[1]) % 600;
  std::string rest(reinterpret_cast<const char*>(data + 2), size - 2);
  size_t end = rest.find("\n\n");
  std::string head = rest.substr(0, end);
  r.body = end == std::string::npos ? "" : rest.substr(end + 2);
  size_t pos = 0;
  while (pos < head.size()) {
    size_t nl = head.find('\n', pos);
    std::string line = head.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos)
      r.headers.push_back({line.substr(0, colon), line.substr(colon + 1)});
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  (void)outboxd::providers::ParseRateHints(r, 1.7e9);
  outboxd::providers::StoredEvent e;
  e.route = R"({"id":"n","s":"s","m":"m","t":"primary","k":"k","r":"r"})";
  e.body = "{}";
  for (auto& p : providers) {
    (void)p->Classify(e, r, 1.7e9);
    if (p->type() == "moost") (void)p->HandleAuthResponse(r, 1.7e9);
  }
  return 0;
}
