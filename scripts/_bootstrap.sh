# Sourced by the launchers: make .venv in the checkout once, reinstall when pyproject.toml changes.
# Usage: bootstrap_venv EXTRAS   (EXTRAS is "" or a pip extras spec like "[test]")
bootstrap_venv() {
  local extras="$1"
  local root venv stamp hash py
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="$root/.venv"
  stamp="$venv/.relax-installed"
  hash="$(sha256sum <"$root/pyproject.toml" | cut -d' ' -f1)"
  # The stamp holds the pyproject hash and the extras installed with it; any extras cover "".
  if [[ -x "$venv/bin/python" && -f "$stamp" ]] &&
    { grep -qxF -- "$hash$extras" "$stamp" || { [[ -z "$extras" ]] && grep -q -- "^$hash" "$stamp"; }; }; then
    return 0
  fi
  py="${RELAX_PYTHON:-}"
  if [[ -z "$py" ]]; then
    for cand in python3.13 python3.12 python3.11 python3; do
      if command -v "$cand" >/dev/null 2>&1 &&
        "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
        py="$cand"
        break
      fi
    done
  fi
  if [[ -z "$py" ]]; then
    echo "relax: needs Python 3.11 or newer (set RELAX_PYTHON to its path)" >&2
    exit 1
  fi
  if [[ ! -x "$venv/bin/python" ]]; then
    echo "relax: setting up .venv in $root (once, about a minute)..." >&2
    "$py" -m venv "$venv"
  elif [[ -f "$stamp" ]] && grep -q -- "^$hash" "$stamp"; then
    echo "relax: installing the $extras extras into .venv in $root..." >&2
  elif [[ -f "$stamp" ]]; then
    echo "relax: updating .venv in $root (pyproject.toml changed)..." >&2
  else
    echo "relax: finishing the setup of .venv in $root (an earlier one did not complete)..." >&2
  fi
  local log="$venv/install.log"
  # Byte code is written once here (an editable install has none), so start-up never compiles
  # the package, even where PYTHONDONTWRITEBYTECODE is set.
  if ! { "$venv/bin/python" -m pip install --quiet --upgrade pip &&
    "$venv/bin/python" -m pip install --quiet -e "$root$extras" &&
    "$venv/bin/python" -m compileall -q "$root/audio_engine"; } >"$log" 2>&1; then
    echo "relax: installing the environment failed; see $log" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  # The neural voice's pronunciation tables and its model as onnxruntime optimizes it, and the
  # background's noise loops, made once here rather than on the first start (about 0.5 s); where
  # that fails, the first start makes them and keeps them in the cache folder.
  "$venv/bin/python" -c 'from audio_engine.speech import neural; neural.build_tables()' \
    >>"$log" 2>&1 || true
  "$venv/bin/python" -c 'from audio_engine import pipeline; pipeline.build_noise_loops()' \
    >>"$log" 2>&1 || true
  echo "$hash$extras" >"$stamp"
}
