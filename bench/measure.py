"""``python -m bench.measure OUT.json -- COMMAND...``: run COMMAND, record its peak memory.

The benchmark starts every measured process through this small launcher because on Linux
a child's ``ru_maxrss`` starts from its parent's resident size at fork time (the old
address space's high-water mark survives ``execve``): forked straight from the benchmark,
which holds the simulator's truth in memory, a 80 MB tap would report gigabytes.

Writes ``{"max_rss_kb", "exit", "rss_kb"}`` to OUT.json, ``rss_kb`` being the resident
size sampled every quarter second as ``[seconds, kB]`` pairs, and exits with COMMAND's
exit code.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from types import FrameType

SAMPLE_SECONDS = 0.25


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m bench.measure OUT.json -- COMMAND...", file=sys.stderr)
        return 2
    out, command = argv[0], argv[2:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(command[0], command)
        except OSError as exc:
            print(f"bench.measure: cannot run {command[0]}: {exc}", file=sys.stderr)
            os._exit(127)

    def forward(signum: int, _frame: FrameType | None) -> None:
        os.kill(pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    done = threading.Event()
    samples: list[tuple[float, int]] = []
    sampler = threading.Thread(target=_sample, args=(pid, done, samples), daemon=True)
    sampler.start()
    _, status, usage = os.wait4(pid, 0)
    done.set()
    sampler.join()
    code = os.waitstatus_to_exitcode(status)
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"max_rss_kb": usage.ru_maxrss, "exit": code, "rss_kb": samples}, f)
    return code if code >= 0 else 128 - code


def _sample(pid: int, done: threading.Event, samples: list[tuple[float, int]]) -> None:
    """Append ``(seconds since start, VmRSS in kB)`` until ``done`` is set."""
    started = time.perf_counter()
    status = f"/proc/{pid}/status"
    while not done.wait(SAMPLE_SECONDS):
        try:
            with open(status, encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        samples.append(
                            (round(time.perf_counter() - started, 2), int(line.split()[1]))
                        )
                        break
        except (OSError, ValueError):
            return


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
