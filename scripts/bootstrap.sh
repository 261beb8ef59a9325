#!/usr/bin/env bash
# The first step of `make demo`, `make test` and every target that runs the code: install what is missing
# on a Debian or Ubuntu machine and nothing when it is all there (then it is a few `command -v` checks and
# one `uv sync --locked`: well under a second).
#   scripts/bootstrap.sh        uv, the locked dependencies (.venv), redis-server
#   scripts/bootstrap.sh test   the same, plus chromium + chromedriver (the dashboard test drives them) and a
#                               compose CLI (the compose test validates the compose files with it; no engine)
# uv goes to ~/.local/bin with pip --user; Debian 12+ and Ubuntu 23.04+ refuse that for the system Python
# ("externally managed"), so then --user --break-system-packages, which writes only under ~/.local and
# leaves the system's packages alone. The Makefile puts ~/.local/bin on PATH for the rest of its recipes.
# System packages come from apt-get (through sudo when not root); when that cannot work it stops with one
# line naming the package and the command to run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.local/bin:$PATH"

profile="${1:-demo}"
case "$profile" in
    demo|test) ;;
    *) echo "usage: scripts/bootstrap.sh [demo|test]" >&2; exit 2 ;;
esac

fail() { echo "bootstrap: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
# The compose test accepts either CLI: docker-compose (Debian's package) or Docker's compose plugin.
have_compose() { have docker-compose || { have docker && docker compose version >/dev/null 2>&1; }; }

# apt_install PKG...: apt-get update + install, as root or through sudo.
apt_install() {
    local as=() by_hand="apt-get install -y $*"
    have apt-get || fail "$* missing and no apt-get on this machine: install $* with its package manager"
    if [ "$(id -u)" -ne 0 ]; then
        have sudo || fail "$* missing; not root and no sudo: as root run: $by_hand"
        as=(sudo)
        by_hand="sudo $by_hand"
    fi
    echo "bootstrap: installing $* (apt-get)"
    { "${as[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
        && "${as[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; } \
        || fail "could not install $*: run $by_hand"
}

# The packages whose command is missing (pip too when uv must be installed: Debian's python3 lacks it).
missing_packages() {
    have redis-server || echo redis-server
    if [ "$profile" = test ]; then
        have chromium || echo chromium
        have chromedriver || echo chromium-driver
        have_compose || echo docker-compose
    fi
    have uv || python3 -m pip --version >/dev/null 2>&1 || echo python3-pip
}
mapfile -t missing < <(missing_packages)
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
    mapfile -t missing < <(missing_packages)
    [ "${#missing[@]}" -eq 0 ] || fail "apt-get installed ${missing[*]}, but their commands are still not on PATH"
fi

if ! have uv; then
    echo "bootstrap: installing uv into ~/.local/bin (pip install --user)"
    export PIP_ROOT_USER_ACTION=ignore  # pip as root warns about the system packages; --user leaves them alone
    python3 -m pip install --quiet --user uv 2>/dev/null \
        || python3 -m pip install --quiet --user --break-system-packages uv \
        || fail "could not install uv: run python3 -m pip install --user --break-system-packages uv"
    have uv || fail "uv is installed but not in ~/.local/bin: add $(python3 -m site --user-base)/bin to PATH"
fi

# --locked, not --frozen: a uv.lock that no longer matches pyproject.toml is an error, not silently re-locked.
[ -d .venv ] || echo "bootstrap: uv sync --locked (the locked dependencies into .venv)"
uv sync --locked --quiet
