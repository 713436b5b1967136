#!/usr/bin/env bash
# Every benchmark in order (import, crawl, images, extract, clean, dedup, tokenizer, train, scale), each
# stage's stdout kept as bench/out/<stage>/report.txt and its stderr as
# bench/out/<stage>/stderr.txt, then bench/RESULTS.md written from the latest report of every
# stage: the machine, the summary of the ratio lines, and each report whole. A stage that fails
# is recorded as failed (exit code, the end of its stderr) and the next one runs; the command
# then exits 1.
#   bench/all.sh [DATA_DIR]          (default ../shared/data beside the repository)
#   STAGES="extract clean" runs those stages only (the others keep their latest report);
#   THREADS=N (default: every core) for every tool; each stage's own knobs (N, PRETOK, STEPS...)
#   pass through
# a data folder given relative to where the command runs, made absolute before common.sh
# moves to the repository
if [ $# -gt 0 ]; then set -- "$(realpath -m -- "$1")"; fi
source "$(dirname "$0")/common.sh"
all=(import crawl images extract clean dedup tokenizer train scale)
read -r -a asked <<< "${STAGES:-${all[*]}}"
stages=()
for s in "${all[@]}"; do
    for a in "${asked[@]}"; do [ "$a" = "$s" ] && { stages+=("$s"); break; }; done
done
for a in "${asked[@]}"; do
    case " ${all[*]} " in *" $a "*) ;; *) echo "no stage $a (the stages: ${all[*]})" >&2; exit 2 ;; esac
done

commit=$(git rev-parse --short HEAD 2> /dev/null || echo unknown)
[ -z "$(git status --porcelain --untracked-files=no 2> /dev/null)" ] || commit+=" with uncommitted changes"
machine=$(machine_line)
# while a stage runs its output goes here: clean and crawl empty their own folder first
work="$root/bench/out/all"
mkdir -p "$work"
failed=0
for s in "${stages[@]}"; do
    echo "$s: running bench/$s/run.sh"
    started=$(date -u '+%Y-%m-%d %H:%M UTC')
    t0=$(date +%s)
    rc=0
    "bench/$s/run.sh" "$data" > "$work/$s.report.txt" 2> "$work/$s.stderr.txt" || rc=$?
    secs=$(($(date +%s) - t0))
    mkdir -p "bench/out/$s"
    mv -f "$work/$s.report.txt" "bench/out/$s/report.txt"
    mv -f "$work/$s.stderr.txt" "bench/out/$s/stderr.txt"
    python3 bench/results.py record "$s" "$rc" "$secs" "$started" "$commit" "$THREADS"
    if [ "$rc" = 0 ]; then
        echo "$s: ok in ${secs} s"
    else
        echo "$s: FAILED with exit code $rc after ${secs} s (bench/out/$s/stderr.txt):"
        tail -n 5 "bench/out/$s/stderr.txt" | sed 's/^/    /'
        failed=1
    fi
done
python3 bench/results.py write "$machine" "$commit" "$data" "${stages[@]}"
echo "wrote bench/RESULTS.md"
exit "$failed"
