"""What the benchmark scripts share: where the repository is, a process's CPU time, free
loopback ports, waiting for a server to listen, and printing a report (and appending it to
bench/RESULTS.md)."""

import os
import socket
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU seconds of process `pid` so far (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def free_port(kind=socket.SOCK_STREAM):
    """A loopback port free now (TCP by default)."""
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for_port(port, seconds=5):
    """Waits until something accepts TCP connections on loopback `port`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)


def publish(report, write):
    """Prints `report`; with `write`, appends it to bench/RESULTS.md as a new section."""
    print(report)
    if write:
        with open(os.path.join(ROOT, "bench/RESULTS.md"), "a") as f:
            f.write("\n" + report)
