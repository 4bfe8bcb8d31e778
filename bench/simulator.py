"""Measure how many list pages a second the simulator serves (latency 0, no rate limit).

Starts ``python -m stripe_sim`` in its own process, then walks ``/v1/charges`` with
``limit=100`` from several client processes over keep-alive connections, each starting at
a different place so pages differ, and prints pages/s, objects/s and MB/s::

    .venv/bin/python -m bench.simulator --charges 200000 --seconds 10
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import sys
import time

from tap_stripe.tables import TABLES_BY_NAME

from stripe_sim.config import API_KEY
from stripe_sim.runner import run_simulator
from stripe_sim.tables import SYNTHESIS

KEY_HEADER = {"Authorization": f"Bearer {API_KEY}"}
CHARGE = TABLES_BY_NAME["charge"]
ID_MARKER = b'{"id":"%s_' % SYNTHESIS["charge"].id_prefix.encode()
OBJECT_MARKER = b'"object":"%s"' % CHARGE.object.encode()


def client(url: str, start_after: str | None, seconds: float, out: multiprocessing.Queue) -> None:
    """Walk pages of 100 charges until time is up; report (pages, objects, bytes)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port))
    cursor = start_after
    pages = objects = size = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        path = f"{CHARGE.path}?limit=100" + (f"&starting_after={cursor}" if cursor else "")
        connection.request("GET", path, headers=KEY_HEADER)
        body = connection.getresponse().read()
        pages += 1
        size += len(body)
        marker = body.rfind(ID_MARKER)
        cursor = body[marker + 7 : body.index(b'"', marker + 7)].decode() if marker >= 0 else None
        objects += body.count(OBJECT_MARKER)
        if b'"has_more":false' in body:
            cursor = start_after
    out.put((pages, objects, size))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    started = time.monotonic()
    with run_simulator(subprocess=True, counts={"charge": args.charges}, days=1095) as sim:
        print(f"simulator ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
        ids = sim.ids("charge")
        step = max(1, len(ids) // args.clients)
        queue: multiprocessing.Queue = multiprocessing.Queue()
        workers = [
            multiprocessing.Process(
                target=client, args=(sim.url, ids[i * step] if i else None, args.seconds, queue)
            )
            for i in range(args.clients)
        ]
        for worker in workers:
            worker.start()
        results = [queue.get() for _ in workers]
        for worker in workers:
            worker.join()
    pages = sum(r[0] for r in results)
    objects = sum(r[1] for r in results)
    megabytes = sum(r[2] for r in results) / 1e6
    print(
        f"{pages / args.seconds:,.0f} pages/s, {objects / args.seconds:,.0f} objects/s, "
        f"{megabytes / args.seconds:,.0f} MB/s ({args.clients} clients, {args.seconds:.0f}s, "
        f"{objects / max(pages, 1):.0f} objects/page, "
        f"{megabytes * 1e3 / max(pages, 1):.0f} KB/page)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
