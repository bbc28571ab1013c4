# Sourced by scripts/test and scripts/demo: makes this machine able to run drauditor.
# Installs WeasyPrint's system libraries from Debian's packages when they are missing (with the test extras, also
# Debian's kubectl when there is none), then a virtualenv in .venv with drauditor installed in editable mode
# (re-installed only when pyproject.toml changes).
set -euo pipefail

PYTHON=${PYTHON:-python3}
EXTRAS=${DRAUDITOR_EXTRAS:-}

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "drauditor needs Python >= 3.11 (found $("$PYTHON" --version 2>&1))" >&2; exit 2; }

apt_install() {
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  fi
}

# Captured first: with pipefail, `ldconfig -p | grep -q` can fail on the SIGPIPE grep -q leaves behind.
libs=$(ldconfig -p)
fonts=$(fc-list 2>/dev/null || true)
if [[ $libs != *libpango-1.0.so.0* || $libs != *libpangoft2-1.0.so.0* || $libs != *libharfbuzz-subset.so.0* \
      || -z $fonts ]]; then
  echo "installing WeasyPrint's system libraries (Debian packages)..." >&2
  mapfile -t weasyprint_debs < <(grep -Ev '^[[:space:]]*(#|$)' scripts/weasyprint-debs.txt) # shared with Containerfile
  apt_install "${weasyprint_debs[@]}"
fi

# The tests render deploy/'s kustomizations with `kubectl kustomize`. Debian's kubectl (kubernetes-client, v1.20
# with kustomize v2.0.3) only when none is installed: another package's newer kubectl owns /usr/bin/kubectl.
if [[ ,$EXTRAS, == *,test,* ]] && ! command -v kubectl >/dev/null; then
  echo "installing kubectl (Debian package kubernetes-client) for the deploy/ tests..." >&2
  apt_install kubernetes-client
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv 2>/dev/null || { apt_install python3-venv && "$PYTHON" -m venv .venv; }
fi

stamp=".venv/.drauditor-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) extras=${EXTRAS}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${EXTRAS:+[$EXTRAS]}" 2>&1 \
    | grep -v '^WARNING: Location' || true
  .venv/bin/python -c 'import auditor, weasyprint' # fail here, clearly, if the install did not work
  echo "$want" > "$stamp"
fi
