#!/bin/bash
# mlspace-s3magic: the SageMaker notebook instance lifecycle (on-start) script for MLSpace notebooks.
#
# What it does, on every notebook start (SageMaker rebuilds everything outside /home/ec2-user/SageMaker on each
# start, so each start installs afresh; a second run within the same start changes nothing):
#   1. copies the config file s3access.conf and the wheel it names from the data bucket's
#      global-read-only/s3access/ prefix (and, if the config names one, a wheelhouse of dependency wheels);
#   2. installs the wheel into the Jupyter server's conda environment (JupyterSystemEnv): the server extension,
#      the JupyterLab extension (JupyterLab 4 only: on JupyterLab 3 it is removed again, with one log line) and
#      the %s3access magics;
#   3. writes the admin endpoint URL into the server's configuration (c.S3Access.admin_url in the environment's
#      etc/jupyter/jupyter_server_config.json) and into /etc/profile.d (S3ACCESS_ADMIN_URL, for terminals and
#      the s3access command);
#   4. restarts the Jupyter server if anything changed;
#   5. in the background (pip can take a while per environment and on-start has 5 minutes), installs the
#      magics into every other conda environment with ipykernel (the kernels): the wheel with --no-deps, then
#      only what the magics import (MAGIC_REQUIREMENTS below: never jupyter_server, never an upgrade of what is
#      already satisfied), and writes c.S3Access.admin_url into the environment's etc/ipython/ipython_config.json.
#
# Idempotent: each environment keeps a stamp (the wheel's SHA-256 and what was installed); a run with the same
# wheel and URL installs nothing, writes nothing and does not restart the server. Every step is logged with a UTC
# timestamp to stdout and to $S3ACCESS_LOG. The script never prints credentials (no xtrace, no environment dumps;
# AWS calls print errors only).
#
# Every path below can be overridden from the environment (the tests run it in a fake notebook layout); the
# defaults are SageMaker's. Exit status: 0 when done (including "nothing to do"), 1 when a step failed: call it
# from the lifecycle configuration with `|| echo ...` so that a failure never stops the notebook from starting.

set -Eeuo pipefail
set +x
umask 022
PATH="$PATH:/usr/local/bin"

# ---- Settings -------------------------------------------------------------------------------------------------
# Where the admin staged the wheel and s3access.conf. Empty: s3://mlspace-data-<account>/global-read-only/s3access,
# MLSpace's default data bucket name, with the account from `aws sts get-caller-identity`.
S3ACCESS_S3_PREFIX="${S3ACCESS_S3_PREFIX:-}"
S3ACCESS_CONDA_ENVS="${S3ACCESS_CONDA_ENVS:-/home/ec2-user/anaconda3/envs}"
S3ACCESS_SERVER_ENV="${S3ACCESS_SERVER_ENV:-$S3ACCESS_CONDA_ENVS/JupyterSystemEnv}"
# Lifecycle scripts start with PATH=/sbin:bin:/usr/sbin:/usr/bin; the AWS CLI may live in the conda root's bin.
PATH="$PATH:$(dirname "$S3ACCESS_CONDA_ENVS")/bin"
S3ACCESS_LOG="${S3ACCESS_LOG:-/var/log/s3access-lifecycle.log}"
S3ACCESS_STAGE_DIR="${S3ACCESS_STAGE_DIR:-/var/lib/s3access-lifecycle}"
S3ACCESS_PROFILE_D="${S3ACCESS_PROFILE_D:-/etc/profile.d}"
# Everything that runs a program from a conda environment (pip, jupyter, the JSON edits) runs as the owner of the
# environments, as AWS's own samples do: files in them stay theirs, and root runs nothing from them.
# Ignored when not running as root or when the user does not exist.
S3ACCESS_RUN_AS="${S3ACCESS_RUN_AS-ec2-user}"
# The kernels' installs: background (default), foreground, or skip.
S3ACCESS_KERNELS="${S3ACCESS_KERNELS:-background}"
S3ACCESS_SERVICE="${S3ACCESS_SERVICE:-jupyter-server}"
# The wheel's Requires-Python (pyproject.toml); an environment with an older Python is skipped with a log line.
MIN_PYTHON="3.11"
# What the magics and the s3access command import: pyproject.toml's dependencies without jupyter_server, which
# only the server extension needs and which the script never installs or upgrades in any environment.
MAGIC_REQUIREMENTS=("boto3>=1.34" "httpx>=0.27" "ipython>=8.12" "ipywidgets>=8.1" "pydantic>=2.6" "tqdm>=4.66"
    "traitlets>=5.9")
LABEXTENSION_NAME="mlspace-s3magic"
CONFIG_NAME="s3access.conf"

# ---- Logging --------------------------------------------------------------------------------------------------
QUIET_STDOUT=0

log() {
    local line
    line="$(date -u +%Y-%m-%dT%H:%M:%SZ) s3access-lifecycle: $*"
    if [[ -n "$S3ACCESS_LOG" ]]; then
        printf '%s\n' "$line" >>"$S3ACCESS_LOG" 2>/dev/null || true
    fi
    if [[ "$QUIET_STDOUT" == 0 ]]; then
        printf '%s\n' "$line"
    fi
}

# Command output (pip's, the AWS CLI's errors) goes to the log file only, indented under the step.
run_logged() {
    local status=0
    if [[ -n "$S3ACCESS_LOG" ]]; then
        "$@" 2>&1 | sed -u 's/^/    /' >>"$S3ACCESS_LOG" || status=$?
    else
        "$@" >/dev/null 2>&1 || status=$?
    fi
    return "$status"
}

fail() {
    log "FAILED: $*"
    exit 1
}

on_error() {
    log "FAILED: unexpected error at line $1 (exit status $2); see the lines above in $S3ACCESS_LOG"
}
trap 'on_error "$LINENO" "$?"' ERR

# ---- Helpers --------------------------------------------------------------------------------------------------
as_env_owner() {
    if [[ -n "$S3ACCESS_RUN_AS" && "$(id -u)" == 0 ]] && id -u "$S3ACCESS_RUN_AS" >/dev/null 2>&1; then
        sudo -u "$S3ACCESS_RUN_AS" -H -- "$@"
    else
        "$@"
    fi
}

# "Python 3.10.14" -> "3.10"; empty when it cannot be read.
python_version() {
    local out
    out="$(as_env_owner "$1" --version 2>&1 || true)"
    if [[ "$out" =~ Python[[:space:]]+([0-9]+)\.([0-9]+) ]]; then
        printf '%s.%s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    fi
}

# The last line a --version command prints, blanks removed.
printed_version() {
    as_env_owner "$@" 2>/dev/null | tail -n 1 | tr -d '[:space:]'
}

version_at_least() { # version minimum (both major.minor)
    local have_major="${1%%.*}" have_minor="${1#*.}" want_major="${2%%.*}" want_minor="${2#*.}"
    ((have_major > want_major || (have_major == want_major && have_minor >= want_minor)))
}

# Set section.key = value in a JSON config file through the environment's own Python; prints changed/unchanged.
# An existing file that is not valid JSON is left alone (an error).
set_json_setting() { # python file section key value
    as_env_owner "$1" - "$2" "$3" "$4" "$5" <<'PY'
import json
import os
import sys

path, section, key, value = sys.argv[1:5]
try:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
except FileNotFoundError:
    data = {}
if not isinstance(data, dict) or not isinstance(data.get(section, {}), dict):
    sys.exit(f"{path} does not hold a JSON object of sections")
if data.get(section, {}).get(key) == value:
    print("unchanged")
    sys.exit(0)
data.setdefault(section, {})[key] = value
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path + ".tmp", "w", encoding="utf-8") as handle:
    json.dump(data, handle, indent=2, sort_keys=True)
    handle.write("\n")
os.replace(path + ".tmp", path)
print("changed")
PY
}

installed_dist_info() { # env version
    compgen -G "$1/lib/python3*/site-packages/mlspace_s3magic-$2.dist-info" >/dev/null
}

stamp_path() { printf '%s/etc/mlspace_s3magic/lifecycle.stamp\n' "$1"; }

stamp_matches() { # env stamp-content version
    local stamp
    stamp="$(stamp_path "$1")"
    [[ -f "$stamp" && "$(cat "$stamp")" == "$2" ]] && installed_dist_info "$1" "$3"
}

write_stamp() { # env stamp-content
    local stamp
    stamp="$(stamp_path "$1")"
    mkdir -p "$(dirname "$stamp")"
    printf '%s\n' "$2" >"$stamp"
}

pip_install() { # python args...
    local py="$1"
    shift
    as_env_owner "$py" -m pip install --disable-pip-version-check --no-input --progress-bar off \
        --retries 1 --timeout 15 "${PIP_SOURCE_ARGS[@]}" "$@"
}

# Install the wheel (--no-deps: never touches Jupyter itself) and what the magics import.
install_package() { # env label
    local env="$1" label="$2" py="$1/bin/python"
    log "$label: installing $WHEEL_NAME (--no-deps) into $env"
    run_logged pip_install "$py" --no-deps --force-reinstall "$WHEEL_PATH" ||
        {
            log "$label: pip could not install the wheel (see $S3ACCESS_LOG)"
            return 1
        }
    log "$label: installing what the magics import if missing: ${MAGIC_REQUIREMENTS[*]}"
    run_logged pip_install "$py" "${MAGIC_REQUIREMENTS[@]}" ||
        {
            log "$label: pip could not install the magics' dependencies (see $S3ACCESS_LOG)"
            return 1
        }
}

python_fits() { # env label
    local version
    version="$(python_version "$1/bin/python")"
    if [[ -z "$version" ]]; then
        log "$2: could not read the Python version; letting pip decide"
        return 0
    fi
    if ! version_at_least "$version" "$MIN_PYTHON"; then
        log "$2: skipped: Python $version is older than $MIN_PYTHON, which mlspace_s3magic requires"
        return 1
    fi
}

# ---- Steps ----------------------------------------------------------------------------------------------------
read_config_value() { # key -> value of the last key=value line, blanks around it trimmed; comments (#) ignored
    local key="$1" line value=""
    while IFS= read -r line || [[ -n "$line" ]]; do
        line="${line%%#*}"
        line="${line%$'\r'}"
        if [[ "$line" =~ ^[[:space:]]*${key}[[:space:]]*=(.*)$ ]]; then
            value="${BASH_REMATCH[1]}"
            value="${value#"${value%%[![:space:]]*}"}"
            value="${value%"${value##*[![:space:]]}"}"
        fi
    done <"$STAGE/$CONFIG_NAME"
    printf '%s\n' "$value"
}

fetch() {
    if [[ -z "$S3ACCESS_S3_PREFIX" ]]; then
        local account
        account="$(aws sts get-caller-identity --query Account --output text 2>/dev/null)" ||
            fail "S3ACCESS_S3_PREFIX is not set and the account could not be read to derive it"
        S3ACCESS_S3_PREFIX="s3://mlspace-data-$account/global-read-only/s3access"
    fi
    S3ACCESS_S3_PREFIX="${S3ACCESS_S3_PREFIX%/}"
    [[ "$S3ACCESS_S3_PREFIX" == s3://* ]] || fail "S3ACCESS_S3_PREFIX must be an s3:// URL"
    log "copying $S3ACCESS_S3_PREFIX/$CONFIG_NAME"
    run_logged aws s3 cp --only-show-errors "$S3ACCESS_S3_PREFIX/$CONFIG_NAME" "$STAGE/$CONFIG_NAME" ||
        fail "could not copy $S3ACCESS_S3_PREFIX/$CONFIG_NAME"

    WHEEL_NAME="$(read_config_value wheel)"
    ADMIN_URL="$(read_config_value admin_url)"
    local wheelhouse offline
    wheelhouse="$(read_config_value wheelhouse)"
    offline="$(read_config_value offline)"

    [[ "$WHEEL_NAME" =~ ^mlspace_s3magic-([0-9][A-Za-z0-9.+!]*)-py3-none-any\.whl$ ]] ||
        fail "$CONFIG_NAME must name the wheel as wheel=mlspace_s3magic-<version>-py3-none-any.whl"
    WHEEL_VERSION="${BASH_REMATCH[1]}"
    if [[ -n "$ADMIN_URL" && ! "$ADMIN_URL" =~ ^https?://[A-Za-z0-9._~:/?#@!\&\(\)*+,\;=%-]+$ ]]; then
        fail "admin_url in $CONFIG_NAME is not a plain http(s) URL"
    fi

    log "copying $S3ACCESS_S3_PREFIX/$WHEEL_NAME"
    WHEEL_PATH="$STAGE/$WHEEL_NAME"
    run_logged aws s3 cp --only-show-errors "$S3ACCESS_S3_PREFIX/$WHEEL_NAME" "$WHEEL_PATH" ||
        fail "could not copy $S3ACCESS_S3_PREFIX/$WHEEL_NAME"
    WHEEL_SHA256="$(sha256sum "$WHEEL_PATH" | cut -d' ' -f1)"
    log "wheel $WHEEL_NAME, sha256 $WHEEL_SHA256"

    PIP_SOURCE_ARGS=()
    if [[ -n "$wheelhouse" ]]; then
        [[ "$wheelhouse" =~ ^[A-Za-z0-9._-]+$ ]] || fail "wheelhouse in $CONFIG_NAME must be a plain folder name"
        log "copying the dependency wheels from $S3ACCESS_S3_PREFIX/$wheelhouse/"
        mkdir -p "$STAGE/wheelhouse"
        run_logged aws s3 sync --only-show-errors "$S3ACCESS_S3_PREFIX/$wheelhouse/" "$STAGE/wheelhouse/" ||
            fail "could not copy $S3ACCESS_S3_PREFIX/$wheelhouse/"
        PIP_SOURCE_ARGS+=(--find-links "$STAGE/wheelhouse")
    fi
    if [[ "$offline" == true ]]; then
        log "offline=true: pip uses only the wheelhouse, never an index"
        PIP_SOURCE_ARGS+=(--no-index)
    fi
}

# Sets SERVER_CHANGED=1 when the server needs a restart.
server_environment() {
    local env="$S3ACCESS_SERVER_ENV" lab_version lab_major mode stamp
    [[ -x "$env/bin/python" ]] || fail "no Jupyter server environment at $env"
    lab_version="$(printed_version "$env/bin/jupyter" lab --version)" || lab_version=""
    lab_major="${lab_version%%.*}"
    if [[ "$lab_major" =~ ^[0-9]+$ ]] && ((lab_major >= 4)); then
        mode="jupyterlab4"
        log "server: JupyterLab $lab_version: installing the server extension, the lab extension and the magics"
    else
        mode="jupyterlab-other"
        log "server: JupyterLab ${lab_version:-not found}: installing the server extension and the magics only"
    fi
    stamp="$WHEEL_SHA256 $mode ${MAGIC_REQUIREMENTS[*]}"

    if stamp_matches "$env" "$stamp" "$WHEEL_VERSION"; then
        log "server: mlspace_s3magic $WHEEL_VERSION already installed from this wheel; nothing to install"
    elif python_fits "$env" server; then
        install_package "$env" server || fail "server: installation failed"
        if [[ "$mode" == jupyterlab4 ]]; then
            [[ -d "$env/share/jupyter/labextensions/$LABEXTENSION_NAME" ]] ||
                log "server: warning: the wheel did not install the lab extension $LABEXTENSION_NAME"
        else
            # The wheel ships the lab extension (built for JupyterLab 4) as shared data; a JupyterLab 3 server
            # must not load it, so it is removed from this environment. Everything else works unchanged.
            rm -rf "${env:?}/share/jupyter/labextensions/$LABEXTENSION_NAME"
            log "server: JupyterLab ${lab_version:-?} is not 4.x: lab extension skipped (the sidebar and request" \
                "dialog need JupyterLab 4: move the notebook to platform notebook-al2-v3); server extension and" \
                "%s3access magics installed"
        fi
        write_stamp "$env" "$stamp"
        SERVER_CHANGED=1
    else
        log "server: the Jupyter server's Python cannot run mlspace_s3magic; nothing installed there"
        return 0
    fi

    local server_version
    server_version="$(printed_version "$env/bin/jupyter" server --version)" || server_version=""
    if [[ ! "$server_version" =~ ^([0-9]+\.[0-9]+) ]] || ! version_at_least "${BASH_REMATCH[1]}" 2.4; then
        log "server: warning: Jupyter Server ${server_version:-not found}: the server extension is made for 2.4" \
            "or later, and the script does not upgrade Jupyter"
    fi

    if [[ -n "$ADMIN_URL" ]]; then
        local result config="$env/etc/jupyter/jupyter_server_config.json"
        result="$(set_json_setting "$env/bin/python" "$config" S3Access admin_url "$ADMIN_URL")" ||
            fail "server: could not write $config"
        if [[ "$result" == changed ]]; then
            log "server: wrote S3Access.admin_url = $ADMIN_URL to $config"
            SERVER_CHANGED=1
        else
            log "server: S3Access.admin_url already $ADMIN_URL"
        fi
    else
        log "server: warning: $CONFIG_NAME names no admin_url: access requests will say no admin endpoint is set"
    fi
}

# /etc/profile.d/s3access.sh: S3ACCESS_ADMIN_URL for terminals and the s3access command.
profile_variable() {
    [[ -n "$ADMIN_URL" ]] || return 0
    local file="$S3ACCESS_PROFILE_D/s3access.sh" content
    content="# Written by the mlspace-s3magic lifecycle script: the admin endpoint for s3access.
export S3ACCESS_ADMIN_URL='$ADMIN_URL'"
    if [[ -f "$file" && "$(cat "$file")" == "$content" ]]; then
        log "profile: $file already sets S3ACCESS_ADMIN_URL"
        return 0
    fi
    mkdir -p "$S3ACCESS_PROFILE_D"
    printf '%s\n' "$content" >"$file.tmp"
    mv "$file.tmp" "$file"
    log "profile: wrote S3ACCESS_ADMIN_URL to $file"
    SERVER_CHANGED=1
}

kernel_environment() { # env
    local env="$1" name label stamp
    name="$(basename "$env")"
    label="kernel $name"
    stamp="$WHEEL_SHA256 magics ${MAGIC_REQUIREMENTS[*]}"
    if stamp_matches "$env" "$stamp" "$WHEEL_VERSION"; then
        log "$label: mlspace_s3magic $WHEEL_VERSION already installed from this wheel; nothing to install"
    elif python_fits "$env" "$label"; then
        install_package "$env" "$label" || return 1
        write_stamp "$env" "$stamp"
        log "$label: installed"
    else
        return 0
    fi
    if [[ -n "$ADMIN_URL" ]]; then
        local result
        result="$(set_json_setting "$env/bin/python" "$env/etc/ipython/ipython_config.json" \
            S3Access admin_url "$ADMIN_URL")" || {
            log "$label: could not write $env/etc/ipython/ipython_config.json"
            return 1
        }
        if [[ "$result" == changed ]]; then
            log "$label: wrote S3Access.admin_url to $env/etc/ipython/ipython_config.json"
        else
            log "$label: S3Access.admin_url already set"
        fi
    fi
}

kernel_environments() {
    local env failures=0 server
    server="$(cd "$S3ACCESS_SERVER_ENV" 2>/dev/null && pwd -P || printf '%s' "$S3ACCESS_SERVER_ENV")"
    log "kernels: installing the magics into the conda environments under $S3ACCESS_CONDA_ENVS"
    for env in "$S3ACCESS_CONDA_ENVS"/*/; do
        env="${env%/}"
        [[ -d "$env" ]] || continue
        [[ "$(cd "$env" && pwd -P)" == "$server" ]] && continue
        if [[ ! -x "$env/bin/python" ]]; then
            log "kernel $(basename "$env"): skipped: no Python in this environment"
            continue
        fi
        if ! compgen -G "$env/lib/python3*/site-packages/ipykernel/__init__.py" >/dev/null; then
            log "kernel $(basename "$env"): skipped: no ipykernel, so no notebook runs in this environment"
            continue
        fi
        kernel_environment "$env" || failures=$((failures + 1))
    done
    if ((failures > 0)); then
        log "kernels: done, $failures environment(s) failed (see $S3ACCESS_LOG)"
        return 1
    fi
    log "kernels: done"
}

main() {
    local started=$SECONDS
    if [[ -n "$S3ACCESS_LOG" ]]; then
        mkdir -p "$(dirname "$S3ACCESS_LOG")"
        touch "$S3ACCESS_LOG"
    fi
    log "starting (server environment $S3ACCESS_SERVER_ENV)"
    STAGE="$S3ACCESS_STAGE_DIR"
    mkdir -p "$STAGE"
    chmod 755 "$STAGE"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$STAGE/.lock"
        flock -w 120 9 || fail "another run holds $STAGE/.lock"
    fi

    fetch
    SERVER_CHANGED=0
    server_environment
    profile_variable
    if ((SERVER_CHANGED)); then
        log "restarting the Jupyter server ($S3ACCESS_SERVICE)"
        run_logged systemctl restart "$S3ACCESS_SERVICE" || fail "systemctl restart $S3ACCESS_SERVICE failed"
    else
        log "nothing changed for the Jupyter server; not restarting it"
    fi

    case "$S3ACCESS_KERNELS" in
        skip)
            log "kernels: skipped (S3ACCESS_KERNELS=skip)"
            ;;
        foreground)
            kernel_environments || fail "kernels: some installations failed"
            ;;
        *)
            # The kernels' pip runs go on after this script returns (SageMaker gives on-start 5 minutes); the lock
            # is released for them and they log to $S3ACCESS_LOG only.
            exec 9>&-
            (
                trap '' HUP
                trap - ERR
                QUIET_STDOUT=1
                if command -v flock >/dev/null 2>&1; then
                    exec 9>"$STAGE/.lock"
                    flock -w 600 9 || exit 1
                fi
                kernel_environments
            ) </dev/null >/dev/null 2>&1 &
            disown
            log "kernels: installing in the background (pid $!); progress in $S3ACCESS_LOG"
            ;;
    esac
    log "done in $((SECONDS - started)) s"
}

main "$@"
