#!/usr/bin/env python3
"""Opus at a phone's rate: cost against quality (a benchmark, not a test).

The gateway encodes each phone's audio to Opus at the phone's own rate (8 kHz for G.711,
16 kHz for G.722). This runs crates/media/examples/opus_phone.rs on the English prompts
(speech) for complexity 0-5, with and without in-band FEC, through a channel losing 0, 5 and
10 % of packets (FEC rebuilt from the next packet when it came), and scores each decoded
signal against the input with PESQ (ITU-T P.862, narrowband mode at 8 kHz, wideband at
16 kHz; the `pesq` package from PyPI, installed on first use).

Usage: bench/opus_phone.py [--rates 8000,16000] [--write]
"""

import argparse
import datetime
import os
import subprocess
import sys
import tempfile

from benchlib import ROOT, publish

EXAMPLE = os.path.join(ROOT, "target/release/examples/opus_phone")
LOSSES = [0.0, 0.05, 0.10]


def scorer():
    try:
        import numpy  # noqa: F401
        from pesq import pesq  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pesq", "numpy"], check=True)
    import numpy as np
    from pesq import pesq

    def score(rate, ref_path, deg_path):
        ref = np.fromfile(ref_path, dtype=np.int16).astype(np.float32)
        deg = np.fromfile(deg_path, dtype=np.int16).astype(np.float32)
        n = min(len(ref), len(deg))
        return pesq(rate, ref[:n], deg[:n], "nb" if rate == 8000 else "wb")
    return score


def run(rate, loss, score):
    with tempfile.TemporaryDirectory() as out:
        text = subprocess.run([EXAMPLE, str(rate), str(loss), out], check=True,
                              capture_output=True, text=True).stdout
        rows = {}
        for line in text.splitlines():
            c, fec, us, kbps = line.split("\t")
            mos = score(rate, os.path.join(out, "ref.raw"), os.path.join(out, f"c{c}_fec{fec}.raw"))
            rows[(int(c), int(fec))] = (float(us), float(kbps), mos)
        return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="8000,16000")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "phonebridge-media", "--example", "opus_phone"],
                   cwd=ROOT, check=True)
    score = scorer()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## Opus at the phone's rate: cost and PESQ by complexity — {when}", "",
             f"Command: `bench/opus_phone.py --rates {args.rates}{' --write' if args.write else ''}`  ",
             "Signal: the English prompts (espeak-ng speech, 12 s), 24 kbit/s VOIP, 20 ms packets; FEC rows "
             "with `packet_loss_perc` 5. PESQ MOS-LQO (P.862: narrowband at 8 kHz, wideband at 16 kHz), "
             "decoded through a channel losing the given share of packets.", ""]
    for rate in [int(r) for r in args.rates.split(",")]:
        results = {loss: run(rate, loss, score) for loss in LOSSES}
        lines += [f"{rate // 1000} kHz:", "",
                  "| complexity | FEC | encode µs/frame | kbit/s | PESQ, no loss | PESQ, 5 % loss | PESQ, 10 % loss |",
                  "| ---: | :---: | ---: | ---: | ---: | ---: | ---: |"]
        for key in sorted(results[0.0]):
            us, kbps, _ = results[0.0][key]
            mos = " | ".join(f"{results[loss][key][2]:.2f}" for loss in LOSSES)
            lines.append(f"| {key[0]} | {'on' if key[1] else 'off'} | {us:.1f} | {kbps:.1f} | {mos} |")
        lines.append("")
    publish("\n".join(lines), args.write)


if __name__ == "__main__":
    main()
