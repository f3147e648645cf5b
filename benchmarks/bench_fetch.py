"""A month of AIA and HMI through the fake JSOC with the real drms client: requests and time.

    python benchmarks/bench_fetch.py [--days 31] [--size 32] [--connections 2]

Builds a synthetic archive of ``--days`` days at 00 and 12 UT (AIA 304/193/171, HMI), serves
it with :class:`farside_gan.testing.fake_jsoc.JsocServer` and fetches it twice: as the
workflow's fetch job does (``fetch_period``: one export per instrument and month) and frame by
frame (``fetch_observation``: one export per frame, what the fetch rule did before). Prints
the number of JSOC requests of each kind and the wall time of each. The fake stages an export
after one status poll, so the times measure this machine, not JSOC's queue (whose staging wait
per export request is what the batched fetch saves).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--connections", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from farside_gan.acquire.download import fetch_observation, fetch_period
    from farside_gan.core.instruments import CHANNELS
    from farside_gan.synthetic import SyntheticSun, build_archive
    from farside_gan.testing.fake_jsoc import JsocServer

    times = [datetime(2011, 1, 1) + timedelta(hours=12 * i) for i in range(2 * args.days)]
    work = Path(tempfile.mkdtemp(prefix="bench_fetch."))
    t0 = time.perf_counter()
    build_archive(work / "archive", times, instruments=("aia", "hmi"), size=args.size,
                  sun=SyntheticSun(seed=0, grid_deg=1.0))
    print(f"archive: {len(times)} times x 4 files, {args.size} px, built in {time.perf_counter() - t0:.1f} s")
    options = {"jsoc_email": "me@example.org", "poll_s": 0.01, "backoff": 0.01}
    with JsocServer(work / "archive") as jsoc:
        options["jsoc_url"] = jsoc.url
        for mode in ("period", "per-frame"):
            jsoc.reset()
            t0 = time.perf_counter()
            for instrument in ("aia", "hmi"):
                out = work / mode / instrument
                if mode == "period":
                    records = fetch_period("jsoc", instrument, times, out, connections=args.connections, **options)
                else:
                    records = [fetch_observation("jsoc", instrument, ch, t, "1h", out / str(ch) / f"{t:%Y%m%dT%H%M}",
                                                 **options)
                               for t in times for ch in CHANNELS[instrument]]
                assert all(r["status"] == "ok" for r in records), [r for r in records if r["status"] != "ok"]
            seconds = time.perf_counter() - t0
            ops = Counter(r.get("op") or ("file" if r["path"].startswith("/SUM") else "other") for r in jsoc.requests)
            print(f"{mode:>9}: {sum(len(CHANNELS[i]) for i in ('aia', 'hmi')) * len(times)} frames in "
                  f"{seconds:.1f} s; export requests {ops['exp_request']}, status polls {ops['exp_status']}, "
                  f"keyword queries {ops['rs_list']}, files {ops['file']}")


if __name__ == "__main__":
    main()
