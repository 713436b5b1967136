"""The distributed peer: the Scrapy spider of peer_scrapy.py on scrapy-redis's shared scheduler
and duplicate filter (the setup its README gives: SCHEDULER, DUPEFILTER_CLASS, REDIS_URL), under
the same politeness settings. Run one process per worker against the same Redis; each stores the
pages it fetched as JSON lines.

usage: peer_scrapy_redis.py SEEDS_FILE OUT.jsonl CONCURRENCY DELAY_S REDIS_URL
"""
import sys
from urllib.parse import urlparse

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.linkextractors import LinkExtractor
from w3lib.url import url_query_cleaner

seeds_file, out, concurrency, delay, redis_url = (
    sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
seeds = [l.strip() for l in open(seeds_file) if l.strip()]


def clean(url):
    # zhcorpus drops utm_* parameters; without the same, Scrapy fetches pages twice
    return url_query_cleaner(url, ["utm_source", "utm_medium", "utm_campaign"], remove=True)


class Farm(scrapy.Spider):
    name = "farm"
    start_urls = seeds
    allowed_domains = sorted({urlparse(s).hostname for s in seeds})
    links = LinkExtractor(process_value=clean)

    def parse(self, response):
        yield {"url": response.url, "body": response.text}
        for link in self.links.extract_links(response):
            yield response.follow(link.url, self.parse)


process = CrawlerProcess(settings={
    "ROBOTSTXT_OBEY": True,
    "CONCURRENT_REQUESTS": concurrency,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
    "DOWNLOAD_DELAY": delay,
    "DOWNLOAD_DELAY_JITTER": 0,
    "AUTOTHROTTLE_ENABLED": False,
    "LOG_LEVEL": "WARNING",
    "TELNETCONSOLE_ENABLED": False,
    "USER_AGENT": "scrapy-bench (+https://scrapy.org)",
    "FEEDS": {out: {"format": "jsonlines", "encoding": "utf8", "overwrite": True}},
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
process.crawl(Farm)
process.start()
