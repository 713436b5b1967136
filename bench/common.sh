# The preamble every bench/<stage>/run.sh shares; sourced, not run:
#   source "$(dirname "$0")/../common.sh"
# It sets strict mode; root (the repository); data (the script's first argument, default
# ../shared/data beside the repository); THREADS (default: every core, `nproc`), exported with
# RAYON_NUM_THREADS set to it so that zhcorpus and every Rust-backed peer (Hugging Face
# tokenizers) get the same pool; builds the release binary (the packages in the array
# `packages` when the script sets it before sourcing, else zhcorpus; with the cargo features in
# `features` when set; without the default features when `no_default_features` is 1, into
# target/no-default so that it never replaces the default binary) and sets z to it; defines
# `venv NAME PKG...` and `machine_line`; and prints the machine line and the thread count as
# the first lines of the script's output.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=${1:-$root/../shared/data}
THREADS=${THREADS:-$(nproc)}
export THREADS RAYON_NUM_THREADS=$THREADS
unset ZHCORPUS_THREADS  # it would outrank RAYON_NUM_THREADS (and a script's one-thread runs)

# venv NAME PKG...: the throwaway environment bench/out/venv-NAME, created when missing, with
# the packages installed as given (pin them: NAME==VERSION); sets venv to its folder
venv() {
    local name=$1
    shift
    venv="$root/bench/out/venv-$name"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q "$@"
}

# one line: CPU model, cores, vector features, memory, OS, rustc, date
machine_line() {
    local cpu cores flags vec="" f mem os rust
    cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
    cores=$(nproc)
    flags=" $(sed -n 's/^flags[[:space:]]*: *//p' /proc/cpuinfo | head -n 1) "
    for f in sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_tile; do
        case $flags in *" $f "*) vec+="${vec:+ }$f" ;; esac
    done
    mem=$(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
    os=$( (. /etc/os-release 2> /dev/null && echo "${PRETTY_NAME:-}") || true)
    rust=$(rustc --version 2> /dev/null || echo "rustc unknown")
    echo "machine: ${cpu:-unknown CPU}, $cores cores, ${vec:-no listed vector features}, $mem memory," \
        "${os:-unknown OS}, $rust, $(date -u '+%Y-%m-%d %H:%M UTC')"
}

cd "$root"
target=$root/target
build=(--release -q)
if [ "${no_default_features:-0}" = 1 ]; then
    target+=/no-default
    build+=(--no-default-features)
fi
# shellcheck disable=SC2046
cargo build "${build[@]}" --target-dir "$target" $(printf -- '-p %s ' "${packages[@]:-zhcorpus}") \
    ${features:+--features "$features"}
z="$target/release/zhcorpus"
machine_line
echo "threads: $THREADS (THREADS; exported, and as RAYON_NUM_THREADS)"
