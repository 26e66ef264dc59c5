// The Debian package CPack builds: its files and maintainer scripts.
#include <doctest/doctest.h>

#include <filesystem>

#include "tests/common/daemon_process.h"

namespace outboxd {
namespace {

TEST_CASE("the .deb holds binaries, units, sysusers/tmpfiles, example, manuals and completion") {
  std::string out;
  if (testing::RunCommand({"sh", "-c", "command -v cpack && command -v dpkg-deb"}, &out) != 0) {
    FAIL("cpack or dpkg-deb is missing");
  }
  testing::TempDir dir;
  int rc = testing::RunCommand(
      {"cpack", "-G", "DEB", "--config", std::string(OUTBOXD_BINARY_DIR) + "/CPackConfig.cmake",
       "-B", dir.path()},
      &out);
  REQUIRE_MESSAGE(rc == 0, out);
  std::string deb;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    if (e.path().extension() == ".deb") deb = e.path();
  }
  REQUIRE_MESSAGE(!deb.empty(), out);
  REQUIRE(testing::RunCommand({"dpkg-deb", "-c", deb}, &out) == 0);
  for (const char* f :
       {"./usr/sbin/outboxd", "./usr/bin/outboxctl", "./usr/lib/systemd/system/outboxd.service",
        "./usr/lib/systemd/system/outboxd.socket", "./usr/lib/sysusers.d/outboxd.conf",
        "./usr/lib/tmpfiles.d/outboxd.conf", "./usr/share/doc/outboxd/examples/outboxd.toml",
        "./usr/share/man/man8/outboxd.8", "./usr/share/man/man1/outboxctl.1",
        "./usr/share/man/man5/outboxd.toml.5",
        "./usr/share/bash-completion/completions/outboxctl"}) {
    CHECK_MESSAGE(out.find(f) != std::string::npos, f << " missing from " << out);
  }
  REQUIRE(testing::RunCommand({"dpkg-deb", "-e", deb, dir / "control"}, &out) == 0);
  std::string postinst = testing::ReadFile(dir / "control/postinst");
  CHECK(postinst.find("systemd-sysusers outboxd.conf") != std::string::npos);
  CHECK(postinst.find("/etc/outboxd/outboxd.toml") != std::string::npos);
  CHECK(access((dir / "control/postinst").c_str(), X_OK) == 0);
  CHECK(testing::ReadFile(dir / "control/postrm").find("purge") != std::string::npos);
  std::string control = testing::ReadFile(dir / "control/control");
  CHECK(control.find("Package: outboxd") != std::string::npos);
  CHECK(control.find("Depends:") != std::string::npos);
}

}  // namespace
}  // namespace outboxd
