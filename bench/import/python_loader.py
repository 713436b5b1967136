#!/usr/bin/env python3
"""The baseline: what a Python pipeline does to load JSONL into SQLite, with the same work as
zhcorpus import (unique ids, named columns, other fields kept as JSON, a content hash, batches
of 1,000 rows per transaction, WAL with synchronous=NORMAL)."""
import hashlib, json, sqlite3, sys

db, path = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(db, isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=NORMAL")
conn.execute("PRAGMA cache_size=-16384")
conn.execute("""CREATE TABLE IF NOT EXISTS documents (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
    url TEXT, source TEXT, title TEXT, text TEXT NOT NULL, lang TEXT, created TEXT, extra TEXT,
    content_hash BLOB NOT NULL, added_at TEXT)""")
conn.execute("CREATE INDEX IF NOT EXISTS documents_source ON documents(source)")
NAMED = ("url", "source", "title", "lang", "created")
sql = """INSERT INTO documents (id, url, source, title, text, lang, created, extra, content_hash,
    added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    ON CONFLICT (id) DO NOTHING"""
batch = []

def flush():
    conn.execute("BEGIN")
    conn.executemany(sql, batch)
    conn.execute("COMMIT")
    batch.clear()

with open(path, encoding="utf-8") as f:
    for line in f:
        d = json.loads(line)
        text = d.pop("text")
        named = [d.pop(k) if isinstance(d.get(k), str) else None for k in NAMED]
        id_ = str(d.pop("id"))
        extra = json.dumps(d, ensure_ascii=False) if d else None
        h = hashlib.blake2b(text.encode(), digest_size=16).digest()
        batch.append((id_, named[0], named[1], named[2], text, named[3], named[4], extra, h))
        if len(batch) >= 1000:
            flush()
if batch:
    flush()
