// Names of the providers' enums, for logs, errors and stats.
#include "providers/http.h"
#include "providers/provider.h"

namespace outboxd::providers {

const char* TransportErrorName(TransportError error) {
  switch (error) {
    case TransportError::kNone:
      return "none";
    case TransportError::kDns:
      return "dns";
    case TransportError::kConnect:
      return "connect";
    case TransportError::kTls:
      return "tls";
    case TransportError::kTimeout:
      return "timeout";
    case TransportError::kReset:
      return "reset";
    case TransportError::kTooLarge:
      return "too_large";
    case TransportError::kOther:
      return "other";
  }
  return "unknown";
}

const char* VerdictKindName(VerdictKind kind) {
  switch (kind) {
    case VerdictKind::kDelivered:
      return "delivered";
    case VerdictKind::kRetry:
      return "retry";
    case VerdictKind::kPermanent:
      return "permanent";
    case VerdictKind::kRateLimited:
      return "rate_limited";
    case VerdictKind::kOffline:
      return "offline";
    case VerdictKind::kRefreshAuth:
      return "refresh_auth";
  }
  return "unknown";
}

}  // namespace outboxd::providers
