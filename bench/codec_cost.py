#!/usr/bin/env python3
"""Codec and resampler cost per 20 ms frame (a benchmark, not a test).

Runs crates/media/examples/codec_bench.rs (release build) for phonebridge's G.711, G.722
(audio-codec crate), Opus (opus-rs) and resamplers, and in the same run measures the
reference libraries real phones use on the same signal and settings: libopus (24 kbit/s,
complexity 5, FEC, 48 kHz mono, VOIP) and spandsp's G.722, through ctypes. The ctypes call
overhead is measured with a no-op call and subtracted.

Usage: bench/codec_cost.py [--rounds 5] [--write]
"""

import argparse
import ctypes
import ctypes.util
import datetime
import math
import os
import subprocess
import time

from benchlib import ROOT, publish


def signal(rate):
    rnd = 12345
    out = []
    for i in range(rate * 10):
        t = i / rate
        v = 4000 * math.sin(2 * math.pi * 300 * t) + 6000 * math.sin(2 * math.pi * 700 * t) + 2000 * math.sin(2 * math.pi * 2300 * t)
        rnd = (rnd * 1103515245 + 12345) & 0xFFFFFFFF
        noise = ((rnd >> 16) & 0xFFFF)
        noise = noise - 65536 if noise >= 32768 else noise
        out.append(max(-32768, min(32767, int(round(v)) + (noise >> 7))))
    return out


def best_of(rounds, fn):
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def call_overhead(lib, rounds):
    f = lib.opus_get_version_string
    def loop():
        for _ in range(500):
            f()
    return best_of(rounds, loop) / 500


def libopus(rounds):
    op = ctypes.CDLL(ctypes.util.find_library("opus") or "libopus.so.0")
    err = ctypes.c_int()
    op.opus_encoder_create.restype = ctypes.c_void_p
    op.opus_decoder_create.restype = ctypes.c_void_p
    pcm = signal(48000)
    frames = [(ctypes.c_int16 * 960)(*pcm[i:i + 960]) for i in range(0, len(pcm) - 959, 960)]
    out = (ctypes.c_uint8 * 1500)()
    packets = []

    def encode():
        packets.clear()
        enc = ctypes.c_void_p(op.opus_encoder_create(48000, 1, 2048, ctypes.byref(err)))
        for request, value in ((4002, 24000), (4010, 5), (4012, 1), (4014, 5)):
            op.opus_encoder_ctl(enc, request, ctypes.c_int(value))
        for f in frames:
            n = op.opus_encode(enc, f, 960, out, 1500)
            packets.append((ctypes.c_uint8 * n).from_buffer_copy(bytes(out[:n])))
        op.opus_encoder_destroy(enc)

    dec_out = (ctypes.c_int16 * 5760)()

    def decoder_at(rate):
        def decode():
            dec = ctypes.c_void_p(op.opus_decoder_create(rate, 1, ctypes.byref(err)))
            for p in packets:
                op.opus_decode(dec, p, len(p), dec_out, 5760, 0)
            op.opus_decoder_destroy(dec)
        return decode

    overhead = call_overhead(op, rounds)
    e = best_of(rounds, encode) / len(frames) - overhead
    encode()
    d = {rate: (best_of(rounds, decoder_at(rate)) / len(frames) - overhead) * 1e6
         for rate in (48000, 8000, 16000)}
    return e * 1e6, d, len(frames), overhead * 1e6


def spandsp_g722(rounds, overhead_us):
    sp = ctypes.CDLL(ctypes.util.find_library("spandsp") or "libspandsp.so.2")
    sp.g722_encode_init.restype = ctypes.c_void_p
    sp.g722_decode_init.restype = ctypes.c_void_p
    pcm = signal(16000)
    frames = [(ctypes.c_int16 * 320)(*pcm[i:i + 320]) for i in range(0, len(pcm) - 319, 320)]
    codes = [(ctypes.c_uint8 * 160)() for _ in frames]
    pcm_out = (ctypes.c_int16 * 320)()

    def encode():
        st = ctypes.c_void_p(sp.g722_encode_init(None, 64000, 0))
        for f, c in zip(frames, codes):
            sp.g722_encode(st, c, f, 320)

    def decode():
        st = ctypes.c_void_p(sp.g722_decode_init(None, 64000, 0))
        for c in codes:
            sp.g722_decode(st, pcm_out, c, 160)

    e = best_of(rounds, encode) / len(frames) * 1e6 - overhead_us
    d = best_of(rounds, decode) / len(frames) * 1e6 - overhead_us
    return e, d, len(frames)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "phonebridge-media", "--example", "codec_bench"], cwd=ROOT, check=True)
    out = subprocess.run([os.path.join(ROOT, "target/release/examples/codec_bench"), str(args.rounds)], capture_output=True, text=True, check=True).stdout
    ours = {}
    for line in out.splitlines():
        name, us, frames = line.split("\t")
        ours[name] = (float(us), int(frames))
    lo_e, lo_d, lo_frames, overhead = libopus(args.rounds)
    sp_e, sp_d, _ = spandsp_g722(args.rounds, overhead)

    rows = [
        ("G.711 µ-law encode", ours["pcmu_encode"][0], None),
        ("G.711 µ-law decode", ours["pcmu_decode"][0], None),
        ("G.711 A-law encode", ours["pcma_encode"][0], None),
        ("G.711 A-law decode", ours["pcma_decode"][0], None),
        ("G.722 encode (audio-codec; ref. spandsp)", ours["g722_encode"][0], sp_e),
        ("G.722 decode (audio-codec; ref. spandsp)", ours["g722_decode"][0], sp_d),
        ("Opus encode 48 kHz mono, 24 kbit/s, c5 (opus-rs; ref. libopus)", ours["opus_encode"][0], lo_e),
        ("Opus decode 48 kHz mono (opus-rs; ref. libopus)", ours["opus_decode"][0], lo_d[48000]),
        ("Opus decode to 8 kHz, full decoder (opus-rs; ref. libopus)", ours["opus_decode_8k_full"][0], lo_d[8000]),
        ("Opus decode to 8 kHz, SILK layer alone (phonebridge; ref. libopus)", ours["opus_decode_8k"][0], lo_d[8000]),
        ("Opus decode to 16 kHz, full decoder (opus-rs; ref. libopus)", ours["opus_decode_16k_full"][0], lo_d[16000]),
        ("Opus decode to 16 kHz, SILK layer alone (phonebridge; ref. libopus)", ours["opus_decode_16k"][0], lo_d[16000]),
    ]
    for name, (us, _) in ours.items():
        if name.startswith("resample_"):
            pair, delay = name[len("resample_"):].split(" ", 1)
            a, b = pair.split("_")
            rows.append((f"resample {int(a)//1000} → {int(b)//1000} kHz {delay}", us, None))

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = [f"## Codec and resampler cost per 20 ms frame — {when}", "",
            f"Command: `bench/codec_cost.py --rounds {args.rounds}{' --write' if args.write else ''}` (best of {args.rounds} passes over 10 s of signal; 500 frames)  ",
            f"Machine: 2 cores. References through ctypes in the same run, call overhead ({overhead:.2} µs) subtracted.", "",
            "| operation | phonebridge µs/frame | reference µs/frame |", "| --- | ---: | ---: |"]
    for name, us, ref in rows:
        text.append(f"| {name} | {us:.2f} | {'' if ref is None else f'{ref:.2f}'} |")
    publish("\n".join(text) + "\n", args.write)


if __name__ == "__main__":
    main()
