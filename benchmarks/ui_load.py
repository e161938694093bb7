"""A bounded loopback load test of `genzoo ui`: many users sampling at once.

Starts `genzoo ui` on a free loopback port with a fresh workspace and a small VAE run (digits),
then `--users` clients (gradio_client, the way scripts call a Gradio app) ask for `--n` samples
each, again and again, for `--seconds`. Reported: requests done and failed (a failure beyond the
server's documented limits is a bug), latency p50/p95/max, throughput, the server's memory (resident
set of its process tree) at the start, at its peak and at the end, and whether the page and one
more request are still served afterwards.

    python benchmarks/ui_load.py                     # 20 users for 60 s (benchmarks/results/ui_load.json)
    python benchmarks/ui_load.py --users 4 --seconds 10 --quick
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from common import save

import genzoo

SAMPLE_OPTIONS = 10  # the Sample page's option boxes after run, n and seed (blank = the model's default)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (training jobs included), in MiB."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(c) for c in children)
        except (OSError, StopIteration):
            continue
    return total / 1024


def wait_until_served(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"genzoo ui did not start (exit {process.poll()})") from None
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=20, help="clients asking at the same time")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they keep asking")
    parser.add_argument("--n", type=int, default=16, help="samples per request")
    parser.add_argument("--quick", action="store_true", help="smoke check: save as ui_load_quick.json")
    args = parser.parse_args()
    from gradio_client import Client

    workspace = Path(tempfile.mkdtemp(prefix="genzoo-ui-load-"))
    run = workspace / "runs" / "vae-digits"
    genzoo.train("vae", "digits", run, {"max_steps": 300, "preview_samples": 0}, device="cpu", quiet=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "genzoo", "ui", "--workspace", str(workspace), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_until_served(url, server)
        memory = {"start": tree_rss_mib(server.pid), "peak": 0.0}
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + args.seconds

        def user(number: int) -> None:
            client = Client(url, verbose=False)
            seed = number * 1000
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                try:
                    client.predict("vae-digits", args.n, seed, *[""] * SAMPLE_OPTIONS, api_name="/draw")
                    with lock:
                        latencies.append(time.perf_counter() - started)
                except Exception as err:  # every kind of failure is counted and reported, not raised
                    with lock:
                        failures.append(f"{type(err).__name__}: {str(err)[:200]}")
                seed += 1

        def watch_memory() -> None:
            while time.monotonic() < stop_at + 5:
                memory["peak"] = max(memory["peak"], tree_rss_mib(server.pid))
                time.sleep(0.5)

        threads = [threading.Thread(target=user, args=(i,)) for i in range(args.users)]
        threads.append(threading.Thread(target=watch_memory))
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
        memory["end"] = tree_rss_mib(server.pid)
        # Still responsive: the page loads and one more request is answered.
        started = time.perf_counter()
        urllib.request.urlopen(url, timeout=10)
        Client(url, verbose=False).predict("vae-digits", args.n, 0, *[""] * SAMPLE_OPTIONS, api_name="/draw")
        after = time.perf_counter() - started
        ordered = sorted(latencies)
        result = {
            "command": " ".join(["python benchmarks/ui_load.py", *sys.argv[1:]]),
            "users": args.users,
            "seconds": args.seconds,
            "samples_per_request": args.n,
            "server_limits": {"concurrency": 2, "waiting_requests": 64},
            "requests_done": len(latencies),
            "requests_failed": len(failures),
            "failures": sorted(set(failures))[:10],
            "throughput_per_second": len(latencies) / elapsed,
            "latency_seconds": {
                "p50": statistics.median(ordered) if ordered else None,
                "p95": ordered[int(0.95 * (len(ordered) - 1))] if ordered else None,
                "max": ordered[-1] if ordered else None,
            },
            "memory_mib": {k: round(v, 1) for k, v in memory.items()},
            "responsive_after": {
                "page_and_one_request_seconds": after,
                "server_alive": server.poll() is None,
            },
        }
        save("ui_load_quick" if args.quick else "ui_load", result)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
