#!/usr/bin/env bash
# Extraction benchmark: zhcorpus, trafilatura (in a throwaway venv) and a keep-all-visible-text
# baseline on the same real Chinese pages (cwced-dev, and the gne news pages against the
# hand-made truth in gne_truth.json), plus the generated failure-kind pages, in one run.
#   bench/extract/run.sh [DATA_DIR]      (default ../shared/data beside the repository)
source "$(dirname "$0")/../common.sh"
if [ ! -d "$data/extract/cwced-dev" ]; then
    echo "no evaluation data at $data/extract (pass the data folder as the first argument)" >&2
    exit 2
fi
out="$root/bench/out/extract"
mkdir -p "$out"
# peers pinned: trafilatura (with lxml_html_clean, which its import needs) and resiliparse,
# DCLM's extractor and the speed anchor of today's pipelines
venv extract trafilatura==2.3.1 lxml_html_clean==0.4.6 resiliparse==2.0.1 cssselect==1.6.0
"$venv/bin/python" bench/extract/eval.py "$z" "$data/extract" "$out"
