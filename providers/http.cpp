#include "providers/http.h"

#include <strings.h>

namespace outboxd::providers {

const std::string* HttpResponse::FindHeader(std::string_view name) const {
  const std::string* found = nullptr;
  for (const auto& h : headers) {
    if (h.name.size() == name.size() && strncasecmp(h.name.data(), name.data(), name.size()) == 0) {
      found = &h.value;
    }
  }
  return found;
}

std::string RedactUrl(std::string_view url) {
  std::string out(url.substr(0, url.find('#')));
  size_t scheme = out.find("://");
  size_t host = scheme == std::string::npos ? 0 : scheme + 3;
  size_t path = out.find_first_of("/?", host);
  size_t at = out.find('@', host);
  if (at != std::string::npos && (path == std::string::npos || at < path)) {
    out.erase(host, at + 1 - host);
  }
  size_t q = out.find('?');
  if (q != std::string::npos) out = out.substr(0, q) + "?REDACTED";
  return out;
}

}  // namespace outboxd::providers
