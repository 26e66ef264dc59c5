#!/usr/bin/env bash
# The .deb that CPack builds installs on a clean Debian root (debootstrap,
# minbase, no /proc and no running systemd, as when a fleet image is built),
# its daemon runs there as the outboxd user, an upgrade keeps the edited
# configuration, remove keeps the queue and purge removes everything.
#   deb_install_test.sh BUILD_DIR SOURCE_DIR
# The clean root comes from $OUTBOXD_DEBROOT or BUILD_DIR/debroot and is
# made there when missing; each run works on a copy of it.
set -euo pipefail
build="$(cd "$1" && pwd)"
src="$(cd "$2" && pwd)"
base="${OUTBOXD_DEBROOT:-$build/debroot}"

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "clean Debian root in $base"
"$src/scripts/debroot.sh" "$base" >"$build/debroot.log" 2>&1 ||
  { tail -20 "$build/debroot.log" >&2; fail "could not make a Debian root (see $build/debroot.log)"; }

work="$(mktemp -d /var/tmp/outboxd-debinstall-XXXXXX)"
daemon_pid=""
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step "building the package"
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/pkg" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack failed"; }
deb="$(ls "$work"/pkg/*.deb)"
root="$work/root"
cp -a "$base" "$root"
cp "$deb" "$root/tmp/outboxd.deb"
in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive "$@"; }

step "apt-get install $(basename "$deb")"
in_root apt-get install -y -q --no-install-recommends /tmp/outboxd.deb >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; fail "the package did not install"; }
in_root dpkg-query -W -f='${Status}' outboxd | grep -qx 'install ok installed' ||
  fail "dpkg does not list outboxd as installed"
for f in /usr/sbin/outboxd /usr/bin/outboxctl /usr/lib/systemd/system/outboxd.service \
  /usr/lib/systemd/system/outboxd.socket /usr/share/man/man8/outboxd.8 \
  /usr/share/man/man1/outboxctl.1 /usr/share/man/man5/outboxd.toml.5 \
  /usr/share/bash-completion/completions/outboxctl; do
  [ -e "$root$f" ] || fail "$f is not installed"
done
in_root getent passwd outboxd >/dev/null || fail "postinst did not create the outboxd user"
owner="$(stat -c '%a %u' "$root/var/lib/outboxd")"
[ "$owner" = "750 $(in_root id -u outboxd)" ] ||
  fail "/var/lib/outboxd is not mode 750 owned by outboxd: $owner"
[ -f "$root/etc/outboxd/outboxd.toml" ] || fail "postinst did not install /etc/outboxd/outboxd.toml"
in_root outboxd --check-config -c /etc/outboxd/outboxd.toml || fail "the example configuration is refused"
ldd_missing="$(in_root ldd /usr/sbin/outboxd /usr/bin/outboxctl | grep 'not found' || true)"
[ -z "$ldd_missing" ] || fail "libraries the Depends line does not pull in: $ldd_missing"

step "outboxd runs in the root as the outboxd user"
cat >"$root/etc/outboxd/test.toml" <<'TOML'
[store]
path = "/var/lib/outboxd/outbox.db"
[ipc]
socket = "/var/lib/outboxd/outboxd.sock"
[providers.hook]
type = "webhook"
url = "http://127.0.0.1:9/"
TOML
chroot --userspec=outboxd:outboxd "$root" /usr/sbin/outboxd -c /etc/outboxd/test.toml \
  >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
  [ -S "$root/var/lib/outboxd/outboxd.sock" ] && break
  sleep 0.1
done
ctl() { in_root outboxctl -s /var/lib/outboxd/outboxd.sock "$@"; }
ctl ping | grep -q 'is up' || { cat "$work/daemon.log" >&2; fail "outboxctl ping got no answer"; }
echo '{"event":"installed"}' | ctl enqueue hook | grep -q '^1 events enqueued' ||
  fail "enqueue was not acknowledged"
ctl stats --json | grep -q '"pending":1' || fail "stats does not show the queued event: $(ctl stats --json)"
[ "$(stat -c '%u' "$root/var/lib/outboxd/outbox.db")" = "$(in_root id -u outboxd)" ] ||
  fail "the database is not owned by the outboxd user"
kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "outboxd did not stop cleanly on SIGTERM: $(cat "$work/daemon.log")"
daemon_pid=""

step "an upgrade keeps the edited configuration"
echo '# edited by the operator' >>"$root/etc/outboxd/outboxd.toml"
in_root dpkg -i /tmp/outboxd.deb >"$work/upgrade.log" 2>&1 ||
  { cat "$work/upgrade.log" >&2; fail "reinstalling over itself failed"; }
grep -q 'edited by the operator' "$root/etc/outboxd/outboxd.toml" ||
  fail "the upgrade replaced the operator's configuration"

step "remove keeps the queue, purge removes configuration and queue"
in_root apt-get remove -y -q outboxd >"$work/remove.log" 2>&1 ||
  { cat "$work/remove.log" >&2; fail "apt-get remove failed"; }
[ ! -e "$root/usr/sbin/outboxd" ] || fail "remove left /usr/sbin/outboxd"
[ -f "$root/var/lib/outboxd/outbox.db" ] || fail "remove deleted the queued events"
in_root apt-get purge -y -q outboxd >"$work/purge.log" 2>&1 ||
  { cat "$work/purge.log" >&2; fail "apt-get purge failed"; }
[ ! -e "$root/etc/outboxd" ] || fail "purge left /etc/outboxd"
[ ! -e "$root/var/lib/outboxd" ] || fail "purge left /var/lib/outboxd"
echo "ok: installed, ran, upgraded, removed and purged on a clean Debian root"
