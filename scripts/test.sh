#!/usr/bin/env bash
# The README's test command: sets up what the tests need on a fresh Debian or Ubuntu machine,
# then runs the whole suite (`cargo test --workspace`, with any arguments given here).
#
# - Chromium (the report's browser test) and a Chinese font (so that its screenshot shows
#   the text): installed with apt-get when missing and this runs as root (or with sudo).
#   Elsewhere, or when apt-get fails, it says what is missing; the tests that need it then
#   fail under CI=true and say they checked nothing otherwise.
# - redis-server (the shared crawl frontier's tests): installed the same way. Each of those
#   tests starts its own server on a free loopback port, its files in a temporary folder, and
#   stops it when done; the service Debian's package may start when installed here is stopped
#   (by its pid file) so that nothing of the suite's is left running.
# - slurm-wlm and munge (the batch stages as Slurm job arrays): installed the same way; each
#   Slurm test starts its own one-node cluster and stops it.
# - OpenMPI (openmpi-bin, libopenmpi-dev) and libclang-dev: the suite is built with the `mpi`
#   feature, and the data-parallel tests start two-rank jobs with `mpirun` (no daemon).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
have_chromium() {
    command -v chromium > /dev/null || command -v chromium-browser > /dev/null \
        || command -v google-chrome > /dev/null || [ -n "${CHROMIUM:-}" ]
}
have_chromium || missing+=(chromium)
fc-list 2> /dev/null | grep -qi -e 'wqy' -e 'noto sans cjk' -e 'source han' || missing+=(fonts-wqy-zenhei)
command -v redis-server > /dev/null || missing+=(redis-server)
# data-parallel training (`--features zhcorpus/mpi`): OpenMPI, its headers, and libclang for the
# mpi crate's bindings
command -v mpirun > /dev/null || missing+=(openmpi-bin)
[ -f /usr/include/x86_64-linux-gnu/openmpi/mpi.h ] || [ -f /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h ] \
    || pkg-config --exists ompi 2> /dev/null || missing+=(libopenmpi-dev)
# the batch stages as Slurm job arrays: each Slurm test starts its own one-node cluster (munged,
# slurmctld, slurmd on free loopback ports, files in a temporary folder) and stops it by its pid
# files; it needs the daemons and client commands of Debian's slurm-wlm and munge
command -v slurmctld > /dev/null || [ -x /usr/sbin/slurmctld ] || missing+=(slurm-wlm)
command -v munged > /dev/null || [ -x /usr/sbin/munged ] || missing+=(munge)
if command -v dpkg > /dev/null; then
    dpkg -s libclang-dev > /dev/null 2>&1 || missing+=(libclang-dev)
fi

if [ ${#missing[@]} -gt 0 ]; then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
    if command -v apt-get > /dev/null && { [ ${#sudo[@]} -eq 0 ] || sudo -n true 2> /dev/null; }; then
        echo "test.sh: installing ${missing[*]} (apt-get)" >&2
        export DEBIAN_FRONTEND=noninteractive
        if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" > /dev/null; then
            "${sudo[@]}" apt-get update -q > /dev/null
            "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" > /dev/null \
                || echo "test.sh: could not install ${missing[*]}" >&2
        fi
    else
        echo "test.sh: missing ${missing[*]} and cannot install them here (not root, no apt-get)" >&2
    fi
fi

# Debian's munge and slurm packages start their daemons where an init system lets them; those
# started by this install are stopped (each test starts its own cluster)
if [[ " ${missing[*]} " == *" munge "* || " ${missing[*]} " == *" slurm-wlm "* ]]; then
    for pidfile in /run/munge/munged.pid /run/slurmctld.pid /run/slurmd.pid \
        /run/slurm/slurmctld.pid /run/slurm/slurmd.pid; do
        [ -f "$pidfile" ] && { kill "$(cat "$pidfile")" 2> /dev/null || true; }
    done
fi

# Debian's package starts a server on port 6379 where it can; one installed just now is
# stopped (the tests start their own), one that was there before is left alone
if [[ " ${missing[*]} " == *" redis-server "* ]]; then
    for pidfile in /run/redis/redis-server.pid /var/run/redis/redis-server.pid; do
        [ -f "$pidfile" ] && { kill "$(cat "$pidfile")" 2> /dev/null || true; }
    done
fi

exec cargo test --workspace --features zhcorpus/mpi "$@"
