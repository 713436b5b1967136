"""img2dataset on a URL and caption list, configured as its README recommends for a
WebDataset output, with the same resize, size and shape filters, output format and total
concurrency as zhcorpus:
    python peer_img2dataset.py LIST.tsv OUTPUT_DIR PROCESSES THREADS_PER_PROCESS MAX_SIDE
"""
import sys

from img2dataset import download


def main():
    url_list, output, processes, threads, max_side = sys.argv[1:]
    download(
        url_list=url_list,
        input_format="tsv",
        url_col="url",
        caption_col="caption",
        output_folder=output,
        output_format="webdataset",
        processes_count=int(processes),
        thread_count=int(threads),
        # the longer side scaled down to MAX_SIDE, never up (zhcorpus's --max-side)
        image_size=int(max_side),
        resize_mode="keep_ratio_largest",
        resize_only_if_bigger=True,
        encode_format="jpg",
        encode_quality=95,
        # zhcorpus's default image rules: shorter side at least 200 pixels, aspect at most 3
        min_image_size=200,
        max_aspect_ratio=3,
        number_sample_per_shard=10000,
        timeout=10,
        retries=0,
        enable_wandb=False,
        distributor="multiprocessing",
    )


if __name__ == "__main__":
    main()
