#!/usr/bin/env bash
# Prepares a Debian 12 machine to build, run and test skiff. Idempotent and silent when
# nothing is missing, so `make` can call it on every run.
#
#   1. system packages, installed with apt only when missing (root only; otherwise the exact
#      command is printed and the script fails);
#   2. a dynamically linked busybox for test root file systems (see below);
#   3. node_modules, via `npm ci`, only when package-lock.json is newer than the last install.
#
# Building dist/ is left to make, which knows which sources changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Everything skiff and its test suites run. Each one exists in Debian 12 (bookworm).
PACKAGES=(
  runc                        # the OCI runtime under the shim
  crun                        # a second OCI runtime, for runtime-handler tests
  containerd                  # only for containerd-shim-runc-v2; its service is kept stopped
  busybox-static              # /bin/busybox for test root file systems
  strace                      # fault injection in the reliability suite (delayed umount2)
  attr                        # getfattr/setfattr: overlay whiteout xattrs
  zstd                        # zstd-compressed image layers
  tar                         # GNU tar: layer extraction
  iproute2                    # ip netns
  util-linux                  # unshare, mount, umount, nsenter
  containernetworking-plugins # CNI plugins in /usr/lib/cni
  docker-registry             # a local registry for pull tests; its service is kept stopped
  skopeo                      # pushes test images into that registry
  gcc                         # builds the static pause program of the built-in pause image
  libc6-dev                   # static libc for it
  tmux                        # `skiff exec -it` tested in a real terminal
  python3-grpcio              # a second gRPC stack (C-core) as a CRI client in interop tests
  openssl                     # test certificates (streaming server over TLS)
  file                        # the built-in image tests check what the pause binary is
)
# Packages that ship a service which must not be left running or enabled by the install:
# skiff only needs their binaries, and a system containerd or registry would get in the way.
SERVICES=(containerd docker-registry)

# Debian's busybox (dynamic) conflicts with busybox-static, so it cannot be apt-installed next
# to it. Its binary is unpacked from the .deb instead; test fixtures copy it and its libc.
DYNAMIC_BUSYBOX_DIR=/usr/local/lib/skiff-testing
DYNAMIC_BUSYBOX="$DYNAMIC_BUSYBOX_DIR/busybox"

log() { echo "setup: $*" >&2; }
die() { echo "setup: error: $*" >&2; exit 1; }

command -v dpkg-query >/dev/null || die "dpkg-query not found: skiff's setup expects Debian 12"
for tool in node npm; do
  command -v "$tool" >/dev/null || die "$tool not found: install Node.js 20 first"
done
# Debian 12's own nodejs package is Node 18; skiff's pinned dependencies need 20 or newer.
node_major=$(node -p 'process.versions.node.split(".")[0]')
[[ $node_major -ge 20 ]] || die "Node.js $(node --version) found, skiff needs Node.js 20 or newer (Debian 12 ships 18: install Node.js 20 from nodejs.org or NodeSource)"

is_root() { [[ $(id -u) -eq 0 ]]; }
systemd_running() { [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; }
contains() { local x=$1; shift; local e; for e in "$@"; do [[ $e == "$x" ]] && return 0; done; return 1; }

# Runs a command with its output kept in a log that is printed only if it fails.
quietly() {
  local out rc=0
  out=$(mktemp)
  "$@" >"$out" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    cat "$out" >&2
    rm -f "$out"
    die "failed ($rc): $*"
  fi
  rm -f "$out"
}

# ---- 1. system packages ------------------------------------------------------------------
missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$pkg")
done

if [[ ${#missing[@]} -gt 0 ]]; then
  install_cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
  if ! is_root; then
    die "missing packages: ${missing[*]}
run as root:
  $install_cmd"
  fi

  # Remember what the services looked like before, so only what the install itself started
  # or enabled is undone. A containerd the user started is never touched.
  declare -A was_active=() was_enabled=() was_running_sysv=()
  for svc in "${SERVICES[@]}"; do
    contains "$svc" "${missing[@]}" || continue
    if systemd_running; then
      was_active[$svc]=$(systemctl is-active "$svc" 2>/dev/null || true)
      was_enabled[$svc]=$(systemctl is-enabled "$svc" 2>/dev/null || true)
    elif [[ -x /etc/init.d/$svc ]] && /etc/init.d/"$svc" status >/dev/null 2>&1; then
      was_running_sysv[$svc]=yes
    fi
  done

  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  quietly apt-get update -q
  quietly apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}"

  for svc in "${SERVICES[@]}"; do
    contains "$svc" "${missing[@]}" || continue
    if systemd_running; then
      if [[ $(systemctl is-active "$svc" 2>/dev/null || true) == active && ${was_active[$svc]} != active ]]; then
        log "stopping the $svc service started by its package"
        systemctl stop "$svc"
      fi
      if [[ $(systemctl is-enabled "$svc" 2>/dev/null || true) == enabled && ${was_enabled[$svc]} != enabled ]]; then
        log "disabling the $svc service enabled by its package"
        systemctl disable --quiet "$svc"
      fi
    elif [[ -x /etc/init.d/$svc && -z ${was_running_sysv[$svc]:-} ]]; then
      # Without systemd, invoke-rc.d may have started the init script: stop that instance
      # (the script only acts on its own pid file) and keep it from starting at boot.
      if /etc/init.d/"$svc" status >/dev/null 2>&1; then
        log "stopping the $svc service started by its package"
        quietly /etc/init.d/"$svc" stop
      fi
      if command -v update-rc.d >/dev/null; then quietly update-rc.d "$svc" disable; fi
    fi
  done
fi

# ---- 2. dynamic busybox ------------------------------------------------------------------
if [[ ! -x $DYNAMIC_BUSYBOX ]]; then
  if ! is_root; then
    die "missing $DYNAMIC_BUSYBOX (the dynamic busybox used by test root file systems)
run as root:
  scripts/setup.sh"
  fi
  log "unpacking Debian's dynamic busybox into $DYNAMIC_BUSYBOX_DIR"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # apt's download sandbox user cannot write into a private mktemp dir; download as root.
  (cd "$work" && quietly apt-get download -q -o APT::Sandbox::User=root busybox)
  quietly dpkg-deb -x "$work"/busybox_*.deb "$work/x"
  "$work/x/bin/busybox" true || die "the unpacked dynamic busybox does not run"
  mkdir -p "$DYNAMIC_BUSYBOX_DIR"
  install -m 0755 "$work/x/bin/busybox" "$DYNAMIC_BUSYBOX.tmp"
  mv -f "$DYNAMIC_BUSYBOX.tmp" "$DYNAMIC_BUSYBOX"
  dpkg-deb -f "$work"/busybox_*.deb Version >"$DYNAMIC_BUSYBOX_DIR/busybox.version"
  rm -rf "$work"
  trap - EXIT
fi

# ---- 3. node_modules ---------------------------------------------------------------------
# The stamp is touched after each successful `npm ci`. npm's own hidden lockfile
# (node_modules/.package-lock.json, rewritten whenever npm changes node_modules) also counts,
# so a tree installed by hand from the current lockfile is not reinstalled.
stamp=node_modules/.skiff-npm-ci.stamp
if [[ ! -d node_modules ]] ||
  { [[ ! $stamp -nt package-lock.json ]] && [[ ! node_modules/.package-lock.json -nt package-lock.json ]]; }; then
  log "npm ci"
  quietly npm ci --no-audit --no-fund
  touch "$stamp"
elif [[ ! -e $stamp ]]; then
  touch "$stamp"
fi
