"""The peer: a Scrapy spider that crawls the farm under the same politeness settings as
zhcorpus (robots.txt obeyed, one request in flight per host, the same delay between requests,
the same global concurrency) and stores every HTML page (URL and body) as a JSON line.

usage: peer_scrapy.py SEEDS_FILE OUT.jsonl CONCURRENCY DELAY_S
"""
import sys
from urllib.parse import urlparse

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.linkextractors import LinkExtractor
from w3lib.url import url_query_cleaner


def clean(url):
    # zhcorpus drops utm_* parameters; without the same, Scrapy fetches pages twice
    return url_query_cleaner(url, ["utm_source", "utm_medium", "utm_campaign"], remove=True)


def spider(seeds_file):
    """The spider: every link followed within the seeds' hosts, every page saved."""
    seeds = [l.strip() for l in open(seeds_file) if l.strip()]

    class Farm(scrapy.Spider):
        name = "farm"
        start_urls = seeds
        allowed_domains = sorted({urlparse(s).hostname for s in seeds})
        links = LinkExtractor(process_value=clean)

        def parse(self, response):
            yield {"url": response.url, "body": response.text}
            for link in self.links.extract_links(response):
                yield response.follow(link.url, self.parse)

    return Farm


def settings(out, concurrency, delay):
    """The politeness and output settings both peers share."""
    return {
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
    }


if __name__ == "__main__":
    seeds_file, out, concurrency, delay = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    process = CrawlerProcess(settings={
        **settings(out, concurrency, delay),
        "DEPTH_PRIORITY": 1,
        "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",
        "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
    })
    process.crawl(spider(seeds_file))
    process.start()
