#!/usr/bin/env python3
"""Bridge benchmark (not a test): K mixed phone calls, each in a session with two publishers.

The clients are crates/server/examples/bridge_bench.rs (str0m peer connections sending Opus);
the phones are one SIPp `uas` with `-rtp_echo`, answering every call the REST API places and
echoing its audio. Per K, in one run:

- reference phase: the K sessions with their two publishers, no calls: phonebridge's CPU and
  the burst delay over the SFU alone (A's stream to a subscriber);
- calls phase: one call per session. The phone hears the N-1 mix (A + B), echoes it, and A
  listens to the phone's stream: the round trip session -> phone -> session.

Reports the CPU each call adds (calls phase minus reference, per call), the calls per core
that makes, the mixer counters from /metrics over the calls phase (frames dropped, source
starvations, media ticks more than a frame late), and the delays. The one-way delay the
gateway adds is estimated as (round trip - SFU reference) / 2: each direction goes through
the gateway once, the SIPp echo adds nothing measurable.

CPU time is read from /proc/<pid>/stat (user + system) at the phase boundaries the client
prints.

Usage: bench/bridge_mix.py [--calls 10,50,100] [--seconds 10] [--write]
"""

import argparse
import datetime
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

from benchlib import ROOT, cpu_seconds, free_port, publish, wait_for_port

SERVER = os.path.join(ROOT, "target/release/phonebridge")
CLIENT = os.path.join(ROOT, "target/release/examples/bridge_bench")
METRICS = ["phonebridge_mix_frames_up_total", "phonebridge_mix_packets_down_total",
           "phonebridge_mix_frames_dropped_total", "phonebridge_mix_starvations_total",
           "phonebridge_mix_concealed_total", "phonebridge_leg_ticks_late_total"]


def metrics(http_port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in METRICS:
            out[name] = float(value)
    return out


def run(k, seconds):
    http_port = free_port()
    sip_port = free_port(socket.SOCK_DGRAM)
    callee_port = free_port(socket.SOCK_DGRAM)
    media_port = 41000
    server = subprocess.Popen(
        [SERVER, "--config", "/dev/null", "--sip", f"127.0.0.1:{sip_port}", "--http", f"127.0.0.1:{http_port}",
         "--webrtc", "127.0.0.1:0", "--rtp-ports", "30000-31999", "--log", "warn",
         "--data-dir", f"/tmp/phonebridge-bridge-bench-{os.getpid()}-{k}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    callee = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(callee_port), "-mp", str(media_port),
         "-rtp_echo", "-nostdin"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/tmp")
    try:
        wait_for_port(http_port)
        client = subprocess.Popen(
            [CLIENT, f"http://127.0.0.1:{http_port}", "MY_SECRET", str(k), str(seconds),
             f"127.0.0.1:{callee_port}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        marks = {}
        result = None
        for line in client.stdout:
            msg = json.loads(line)
            if "phase" in msg:
                marks[msg["phase"]] = (cpu_seconds(server.pid), time.time(), metrics(http_port))
            else:
                result = msg
        client.wait(timeout=600)
        assert result is not None, "the client gave no result"

        def cpu(a, b):
            (c0, t0, _), (c1, t1, _) = marks[a], marks[b]
            return (c1 - c0) / (t1 - t0)

        result["cpu_reference"] = cpu("reference-start", "reference-end")
        result["cpu_calls"] = cpu("calls-start", "calls-end")
        m0, m1 = marks["calls-start"][2], marks["calls-end"][2]
        result["mix"] = {n: m1.get(n, 0) - m0.get(n, 0) for n in METRICS}
        return result
    finally:
        server.terminate()
        callee.terminate()
        server.wait()
        callee.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", default="10,50,100")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "phonebridge", "--bin", "phonebridge",
                    "--example", "bridge_bench"], cwd=ROOT, check=True)
    rows = []
    for k in [int(x) for x in args.calls.split(",")]:
        r = run(k, args.seconds)
        print(f"K={k}: {json.dumps(r)}", file=sys.stderr)
        rows.append((k, r))

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## Mixed phone calls, K calls each in a session with two publishers — {when}", "",
             f"Command: `bench/bridge_mix.py --calls {args.calls} --seconds {args.seconds:g}{' --write' if args.write else ''}`  ",
             "Machine: 2 cores; phonebridge, the str0m clients (crates/server/examples/bridge_bench.rs: 2 Opus "
             "publishers per session, one listener of each phone) and SIPp (`uas -rtp_echo`, PCMU) on one host over "
             "loopback. Delays are from A's tone burst being sent to its onset being heard (5 ms resolution).", "",
             "| calls | CPU, publishers only (% of a core) | CPU with calls | per call | calls per core | mix frames up | dropped | starvations | late ticks | bursts heard | SFU reference p50 / p90 (ms) | round trip p50 / p90 (ms) | added one-way p50 (ms) |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for k, r in rows:
        ref, calls = r["cpu_reference"] * 100, r["cpu_calls"] * 100
        per = (calls - ref) / k
        mix = r["mix"]
        rt, sfu = r["round_trip"], r["reference"]
        added = (rt["p50_ms"] - sfu["p50_ms"]) / 2
        lines.append(
            f"| {k} | {ref:.1f} | {calls:.1f} | {per:.2f} | {100 / per if per > 0 else float('inf'):.0f} | "
            f"{mix['phonebridge_mix_frames_up_total']:.0f} | {mix['phonebridge_mix_frames_dropped_total']:.0f} | "
            f"{mix['phonebridge_mix_starvations_total']:.0f} | {mix['phonebridge_leg_ticks_late_total']:.0f} | "
            f"{r['bursts_heard']} / {r['bursts_sent']} | {sfu['p50_ms']:.1f} / {sfu['p90_ms']:.1f} | "
            f"{rt['p50_ms']:.1f} / {rt['p90_ms']:.1f} | {added:.1f} |")
    publish("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
