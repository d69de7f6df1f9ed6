# Shared by scripts/setup-browsers and scripts/setup-optional (sourced, not run):
# wait for the dpkg lock, bounded, then apt-get install one package, or say why not.
# The caller sets PYTHON, LOCK and WAIT_S.

# 0 once nobody holds the lock (or it cannot be checked: apt then decides), 1 if it is
# still held after WAIT_S. dpkg and apt hold it with fcntl(2) locks, so flock(1) cannot
# see them; Python's fcntl.lockf can (taken and released at once).
wait_for_dpkg_lock() {
  "$PYTHON" - "$LOCK" "$WAIT_S" <<'PY'
import fcntl, os, sys, time
path, wait_s = sys.argv[1], float(sys.argv[2])
try:
    fd = os.open(path, os.O_RDWR)
except OSError:
    sys.exit(0)
deadline, told = time.monotonic() + wait_s, False
while True:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(fd, fcntl.LOCK_UN)
        sys.exit(0)
    except OSError:
        if time.monotonic() >= deadline:
            sys.exit(1)
        if not told:
            print(f"setup: another package manager holds {path}; waiting up to "
                  f"{wait_s:g} s for it to finish", file=sys.stderr, flush=True)
            told = True
        time.sleep(0.5)
PY
}

updated=""
# install PACKAGE LABEL: 0 when installed, else prints "skipped LABEL: <reason>".
install() {
  local package=$1 label=$2 status
  if ! wait_for_dpkg_lock; then
    echo "setup: skipped $label: another process still holds the dpkg lock ($LOCK)" \
      "after ${WAIT_S} s; run scripts/setup again once it is done" >&2
    return 1
  fi
  if [ -z "$updated" ]; then
    apt-get -o DPkg::Lock::Timeout="$WAIT_S" update -qq >&2 || true
    updated=1
  fi
  echo "setup: installing Debian's $package" >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$WAIT_S" \
    install -y -qq "$package" >/dev/null
  status=$?
  if [ "$status" -ne 0 ]; then
    echo "setup: skipped $label: apt-get install $package failed (exit $status)" >&2
    return 1
  fi
}

