#!/usr/bin/env bash
# Installs the Ceph lab's daemons and tools from Debian's registry (bookworm: 16.2.15) when ceph-mon is missing.
# No daemon starts: there is no systemd here, the lab (tests/cephlab/launcher.py) starts its own. Idempotent.
# Needs root or sudo for apt-get; without either it says so and exits non-zero (the tests then skip).
set -euo pipefail

packages=(ceph-mon ceph-osd ceph-mgr ceph-common)

if command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null && command -v ceph-mgr >/dev/null \
  && command -v ceph >/dev/null; then
  exit 0
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "tests/cephlab/setup.sh: installing ${packages[*]} needs root or sudo" >&2; return 1
  fi
}

SECONDS=0
echo "tests/cephlab/setup.sh: apt-get install ${packages[*]}"
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "tests/cephlab/setup.sh: installed $(ceph --version | cut -d' ' -f3) in ${SECONDS} s"
