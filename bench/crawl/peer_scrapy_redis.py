"""The distributed peer: the Scrapy spider of peer_scrapy.py on scrapy-redis's shared scheduler
and duplicate filter (the setup its README gives: SCHEDULER, DUPEFILTER_CLASS, REDIS_URL), under
the same politeness settings. Run one process per worker against the same Redis; each stores the
pages it fetched as JSON lines.

usage: peer_scrapy_redis.py SEEDS_FILE OUT.jsonl CONCURRENCY DELAY_S REDIS_URL
"""
import os
import sys

from scrapy.crawler import CrawlerProcess

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_scrapy import settings, spider  # noqa: E402

seeds_file, out, concurrency, delay, redis_url = (
    sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])

process = CrawlerProcess(settings={
    **settings(out, concurrency, delay),
    # scrapy-redis as its example project sets it up: one request queue (its default, the
    # priority queue) and one seen-set for all workers, kept when a worker closes
    # (SCHEDULER_PERSIST: without it the first worker to close clears both, and the others
    # fetch everything again). SCHEDULER_IDLE_BEFORE_CLOSE stays at its default, 0: with a
    # blocking pop (any value above 0) a worker under Scrapy 2.19 never closes; with 0, a worker
    # closes when it finds the queue empty and nothing in flight
    "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
    "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
    "SCHEDULER_PERSIST": True,
    "REDIS_URL": redis_url,
})
process.crawl(spider(seeds_file))
process.start()
