// outboxd: parse flags, load the configuration, run. Nothing else.
#include <cstdio>
#include <cstring>
#include <string>

#include "daemon/app.h"
#include "daemon/config.h"
#include "daemon/log.h"

namespace {

void Usage(FILE* out) {
  std::fprintf(out,
               "usage: outboxd [-c FILE] [--check-config] [--version]\n"
               "  -c, --config FILE   configuration file (TOML); built-in defaults without it\n"
               "  --check-config      validate the configuration and exit\n"
               "  --version           print the version and exit\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      path = argv[++i];
    } else if (a == "--check-config") {
      check = true;
    } else if (a == "--version") {
      std::printf("outboxd %s\n", OUTBOXD_VERSION);
      return 0;
    } else if (a == "-h" || a == "--help") {
      Usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "outboxd: unknown argument \"%s\"\n", argv[i]);
      Usage(stderr);
      return 2;
    }
  }
  outboxd::Config config = outboxd::DefaultConfig();
  if (!path.empty()) {
    std::string error;
    if (!outboxd::LoadConfig(path, &config, &error)) {
      std::fprintf(stderr, "outboxd: %s\n", error.c_str());
      return 2;
    }
  }
  if (check) {
    std::printf("%s: ok (%zu providers)\n", config.source.c_str(), config.providers.size());
    return 0;
  }
  return outboxd::RunDaemon(config, path);
}
