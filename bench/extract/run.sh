#!/usr/bin/env bash
# Extraction benchmark: zhcorpus, trafilatura (in a throwaway venv) and a keep-all-visible-text
# baseline on the same real Chinese pages (cwced-dev, and the gne news pages against the
# hand-made truth in gne_truth.json), plus the generated failure-kind pages, in one run.
#   bench/extract/run.sh [DATA_DIR]      (default ../shared/data beside the repository)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data=${1:-$root/../shared/data}
if [ ! -d "$data/extract/cwced-dev" ]; then
    echo "no evaluation data at $data/extract (pass the data folder as the first argument)" >&2
    exit 2
fi
out="$root/bench/out/extract"
venv="$root/bench/out/venv-extract"
mkdir -p "$out"
cd "$root"
cargo build --release -q -p zhcorpus
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# peers pinned: trafilatura (with lxml_html_clean, which its import needs) and resiliparse,
# DCLM's extractor and the speed anchor of today's pipelines
"$venv/bin/pip" install -q trafilatura==2.3.1 lxml_html_clean resiliparse==2.0.1 cssselect
"$venv/bin/python" bench/extract/eval.py "$root/target/release/zhcorpus" "$data/extract" "$out"
