#!/usr/bin/env bash
# apt_install PACKAGE...: install Debian packages with apt-get, waiting (bounded) while another
# process holds apt's or dpkg's lock (an unattended upgrade, another install), instead of giving
# up at once. Waits at most RELAX_APT_WAIT_S seconds (default 300) in steps of
# RELAX_APT_STEP_S (default 5); returns apt-get's failure otherwise. Quiet unless it waits.

apt_install() {
  local waited=0 limit="${RELAX_APT_WAIT_S:-300}" step="${RELAX_APT_STEP_S:-5}" out
  local lock=(-o "DPkg::Lock::Timeout=$step")
  while :; do
    if out="$(apt-get install -y -q "${lock[@]}" "$@" 2>&1)"; then
      return 0
    fi
    if ! grep -qiE 'could not get lock|unable to acquire|is another process using it' <<<"$out"; then
      # Not the lock: the package lists may be stale (a fresh machine); update them, once.
      if [[ -z "${_relax_apt_updated:-}" ]]; then
        _relax_apt_updated=1
        if out="$(apt-get update -q "${lock[@]}" 2>&1)"; then
          continue
        fi
        grep -qiE 'could not get lock|unable to acquire' <<<"$out" || return 1
        _relax_apt_updated=""
      else
        return 1
      fi
    fi
    if ((waited >= limit)); then
      echo "relax: apt is still busy after ${waited}s (another process holds its lock)" >&2
      return 1
    fi
    ((waited == 0)) && echo "relax: another process holds apt's lock; waiting (at most ${limit}s)..." >&2
    sleep "$step"
    waited=$((waited + step))
  done
}
