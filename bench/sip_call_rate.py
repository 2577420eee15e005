#!/usr/bin/env python3
"""SIP call-rate benchmark (not a test).

Drives SIPp's built-in `uac` against phonebridge's echo user at rising call rates and
reports the highest rate with zero failed calls, and the CPU time phonebridge spends per
1,000 calls. In the same run, SIPp's own `uas` is driven the same way as the reference.

CPU time is read from /proc/<pid>/stat (user + system) before each step and `--drain`
seconds after its last call ended.

Usage: bench/sip_call_rate.py [--rates 200,400,...] [--seconds 10] [--repeat N]
                               [--drain S] [--binary PATH] [--write]
  --repeat N  runs each rate N times (phonebridge and SIPp interleaved, which one goes first
              alternating between runs, so drift of the host favours neither) and reports medians.
  --drain S   how long CPU is still counted after a step's last call (default 0.5 s). Both
              servers finish some work after the call: phonebridge ends UDP transactions
              64*T1 = 32 s after their last response (RFC 3261 Timer J, RFC 6026 Timer L: absorbing
              retransmissions until then), SIPp keeps each Call-ID 33 s (-deadcall_wait).
              --drain 35 counts that work for the calls that caused it. Past the first 0.5 s
              only CPU above the process's idle rate counts (measured for 10 s before the first
              step and printed: SIPp polls every millisecond even when idle).
  --binary    measures another build of phonebridge (default: target/release, built first).
  --write     appends the results to bench/RESULTS.md.
"""

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time

from benchlib import ROOT, cpu_seconds


def run_uac(target, rate, seconds, workdir):
    calls = rate * seconds
    stf = os.path.join(workdir, f"uac-{target.replace(':', '_')}-{rate}.csv")
    if os.path.exists(stf):
        os.remove(stf)
    cmd = ["sipp", "-sn", "uac", "-s", "echo", target, "-r", str(rate), "-m", str(calls),
           "-l", str(max(rate * 2, 100)), "-i", "127.0.0.1", "-p", "0", "-nostdin",
           "-timeout", f"{seconds * 4 + 30}s", "-trace_stat", "-stf", stf, "-fd", "1",
           "-max_socket", "65000"]
    subprocess.run(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(stf) as f:
        lines = f.read().splitlines()
    header = lines[0].split(";")
    last = lines[-1].split(";")
    col = lambda name: int(last[header.index(name)])
    return col("SuccessfulCall(C)"), col("FailedCall(C)"), calls


SETTLE = 0.5
IDLE_SECONDS = 10.0


def idle_rates(pids):
    """CPU seconds per second each process spends with no calls."""
    before = [cpu_seconds(p) for p in pids]
    time.sleep(IDLE_SECONDS)
    return [(cpu_seconds(p) - b) / IDLE_SECONDS for p, b in zip(pids, before)]


def measure(pid, idle, target, rate, seconds, drain, workdir):
    before = cpu_seconds(pid)
    t0 = time.monotonic()
    ok, failed, calls = run_uac(target, rate, seconds, workdir)
    wall = time.monotonic() - t0
    time.sleep(SETTLE)
    cpu = cpu_seconds(pid) - before
    if drain > SETTLE:
        # What the calls left for later: the CPU of the drain beyond the idle rate.
        mark = cpu_seconds(pid)
        time.sleep(drain - SETTLE)
        cpu += max(0.0, cpu_seconds(pid) - mark - idle * (drain - SETTLE))
    # What SIPp actually achieved: it may fall short of the requested rate on a busy host.
    return {"rate": rate, "ok": ok, "failed": failed, "calls": calls, "wall": wall,
            "achieved": ok / wall, "cpu_per_1000": 1000.0 * cpu / max(ok, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="200,400,600,800,1000,1200")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--drain", type=float, default=SETTLE)
    ap.add_argument("--binary")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]

    binary = args.binary
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "phonebridge"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target", "release", "phonebridge")
    workdir = tempfile.mkdtemp(prefix="phonebridge-bench-")

    pb = subprocess.Popen([binary, "--config", "/dev/null", "--sip", "127.0.0.1:15070",
                           "--http", "127.0.0.1:14480", "--rtp-ports", "20000-29999",
                           "--max-calls", "100000", "--log", "warn"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uas = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", "15080", "-nostdin",
                            "-max_socket", "65000", "-bg"], cwd=workdir,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    uas_pid = int(subprocess.check_output(["pgrep", "-n", "-f", "sipp -sn uas -i 127.0.0.1 -p 15080"]).split()[0])
    pb_idle, uas_idle = idle_rates([pb.pid, uas_pid])
    idle_line = (f"idle CPU (no calls, {IDLE_SECONDS:g} s): phonebridge {1000 * pb_idle:.1f} ms/s, "
                 f"SIPp uas {1000 * uas_idle:.1f} ms/s")
    print(idle_line, flush=True)
    rows = []
    # phonebridge's CPU per call over SIPp's, both medians.
    ratio = lambda p, r: p["cpu_per_1000"] / max(r["cpu_per_1000"], 1e-9)
    try:
        for rate in rates:
            runs = []
            for i in range(max(args.repeat, 1)):
                pb_run = lambda: measure(pb.pid, pb_idle, "127.0.0.1:15070", rate, args.seconds, args.drain, workdir)
                uas_run = lambda: measure(uas_pid, uas_idle, "127.0.0.1:15080", rate, args.seconds, args.drain, workdir)
                if i % 2 == 0:
                    first = pb_run()
                    runs.append((first, uas_run()))
                else:
                    first = uas_run()
                    runs.append((pb_run(), first))
            # Medians of CPU per call; counts summed over the runs.
            def median_of(side):
                rs = sorted((x[side] for x in runs), key=lambda m: m["cpu_per_1000"])
                mid = dict(rs[len(rs) // 2])
                for k in ("ok", "failed", "calls"):
                    mid[k] = sum(x[side][k] for x in runs)
                return mid
            p, r = median_of(0), median_of(1)
            rows.append((p, r))
            print(f"rate {rate:5}/s (achieved {p['achieved']:6.0f}/s)  phonebridge ok {p['ok']:6} failed {p['failed']:4} "
                  f"cpu/1000 calls {p['cpu_per_1000']:.3f} s  |  sipp uas ok {r['ok']:6} "
                  f"failed {r['failed']:4} cpu/1000 calls {r['cpu_per_1000']:.3f} s  |  ratio {ratio(p, r):.2f}", flush=True)
    finally:
        pb.terminate()
        subprocess.run(["kill", str(uas_pid)])
        pb.wait()

    clean = [p for p, _ in rows if p["failed"] == 0 and p["ok"] == p["calls"]]
    best = max(clean, key=lambda p: p["achieved"]) if clean else None
    summary = (f"highest rate with zero failed calls: requested {best['rate']}/s, achieved {best['achieved']:.0f}/s"
               if best else "no rate completed without failed calls")
    summary += f" (rates {','.join(map(str, rates))}, {args.seconds} s each)"
    print(summary)
    if args.write:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        with open(os.path.join(ROOT, "bench", "RESULTS.md"), "a") as f:
            f.write(f"\n## SIP call rate, echo user — {stamp}\n\n")
            repeat = f" --repeat {args.repeat}" if args.repeat > 1 else ""
            drain = f" --drain {args.drain:g}" if args.drain != SETTLE else ""
            f.write(f"Command: `bench/sip_call_rate.py --rates {args.rates} --seconds {args.seconds}{repeat}{drain} --write`"
                    f"{' (medians of the runs)' if args.repeat > 1 else ''}  \n")
            f.write(f"Machine: {os.cpu_count()} cores; SIPp uac, phonebridge and the SIPp uas reference on one host over loopback.\n\n")
            f.write("| requested calls/s | achieved calls/s | phonebridge ok | failed | CPU s / 1000 calls | SIPp uas ok | failed | CPU s / 1000 calls | phonebridge / SIPp |\n")
            f.write("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
            for p, r in rows:
                f.write(f"| {p['rate']} | {p['achieved']:.0f} | {p['ok']} | {p['failed']} | {p['cpu_per_1000']:.3f} | {r['ok']} | {r['failed']} | {r['cpu_per_1000']:.3f} | {ratio(p, r):.2f} |\n")
            f.write(f"\n{summary}.  \n{idle_line}.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
