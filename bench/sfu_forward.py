#!/usr/bin/env python3
"""SFU forwarding benchmark (not a test).

One publisher (audio 50 packets/s, video 30 frames/s of five 1,100-byte packets, about
1.3 Mbit/s) forwarded to N subscribers through phonebridge's SFU, the clients being str0m
peer connections in crates/server/examples/sfu_bench.rs. Reports phonebridge's CPU per
forwarded stream and the one-way delay each subscriber measures; in the same run, the same
clients connected directly (no SFU) give the reference delay, so the difference is the
delay the SFU adds.

CPU time is read from /proc/<pid>/stat (user + system) between the clients being connected
and the end of the run.

Usage: bench/sfu_forward.py [--subscribers 1,5,10,20] [--seconds 10] [--write]
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time

from benchlib import ROOT, cpu_seconds, free_port, publish, wait_for_port

SERVER = os.path.join(ROOT, "target/release/phonebridge")
CLIENT = os.path.join(ROOT, "target/release/examples/sfu_bench")


def run_client(args):
    out = subprocess.run([CLIENT] + args, capture_output=True, text=True, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_sfu(n, seconds):
    port = free_port()
    server = subprocess.Popen(
        [SERVER, "--config", "/dev/null", "--sip", "127.0.0.1:0", "--http", f"127.0.0.1:{port}",
         "--webrtc", "127.0.0.1:0", "--log", "warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        client = subprocess.Popen([CLIENT, f"http://127.0.0.1:{port}", "MY_SECRET", str(n), str(seconds)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        ready = client.stdout.readline()
        assert "ready" in ready, ready
        c0, t0 = cpu_seconds(server.pid), time.time()
        rest = client.stdout.read()
        client.wait(timeout=300)
        c1, t1 = cpu_seconds(server.pid), time.time()
        result = json.loads(rest.strip().splitlines()[-1])
        result["cpu"] = (c1 - c0) / (t1 - t0)
        return result
    finally:
        server.terminate()
        server.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", default="1,5,10,20")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "phonebridge", "--bin", "phonebridge", "--example", "sfu_bench"],
                   cwd=ROOT, check=True)
    direct = run_client(["direct", str(args.seconds)])
    rows = []
    for n in [int(x) for x in args.subscribers.split(",")]:
        r = run_sfu(n, args.seconds)
        streams = 2 * n  # an audio and a video stream per subscription
        packets_per_s = r["packets"] / r["seconds"]
        rows.append((n, r, streams, packets_per_s))
        print(f"N={n}: {r}", file=sys.stderr)

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## SFU forwarding, one publisher to N subscribers — {when}", "",
             f"Command: `bench/sfu_forward.py --subscribers {args.subscribers} --seconds {args.seconds:g}{' --write' if args.write else ''}`  ",
             "Machine: 2 cores; the str0m clients (crates/server/examples/sfu_bench.rs) and phonebridge on one host over loopback. "
             "Publisher: audio 50 packets/s + video 30 frames/s × 5 × 1,100 bytes (~1.3 Mbit/s).", "",
             f"Reference (same clients connected directly, no SFU): one-way delay p50 {direct['p50_us']} µs, p90 {direct['p90_us']} µs, p99 {direct['p99_us']} µs.", "",
             "| subscribers | forwarded streams | packets received/s (all subscribers) | phonebridge CPU (% of a core) | CPU per forwarded stream (% of a core) | delay p50 / p90 / p99 (µs) | added p50 vs direct (µs) |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n, r, streams, pps in rows:
        cpu = r["cpu"] * 100
        lines.append(f"| {n} | {streams} | {pps:.0f} | {cpu:.1f} | {cpu / streams:.2f} | {r['p50_us']} / {r['p90_us']} / {r['p99_us']} | {r['p50_us'] - direct['p50_us']} |")
    publish("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
