#!/usr/bin/env python3
"""The HTTP API under load, whole-process: a replay at full speed with no
API, with the API and no client, and with 50 clients long-polling
`/events/json` and 10 streaming `/stream`, as issue 15 asks.

    benches/api-load.py [CAPTURE] [RUNS] [TYPES]

For each case: the replay's wall time, flowstatd's own CPU time (user +
system: what the agent spent, apart from the clients' CPU on the same
cores), its peak RSS, and the records its file sink wrote (none may be
lost to the API). Medians over RUNS (default 5). The streams take every
record, or the record types TYPES names (e.g. event,agent_status, what the
dashboard streams). With every record streamed, a last line gives the
floor: the CPU the kernel alone spends sending the same bytes (the
replay's output, 10 times) to 10 loopback TCP clients, from a sender that
does nothing else, in 64 KiB writes. The config is
benches/analytics.toml (10 flow definitions, thresholds: events to
long-poll for).
"""

import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

capture = sys.argv[1] if len(sys.argv) > 1 else "benches/data/vlan-rounds-20.pcap"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
types = sys.argv[3] if len(sys.argv) > 3 else ""
flowstatd = "target/release/flowstatd"
config = "benches/analytics.toml"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clients(port, types, stop):
    """50 clients long-polling /events/json (each asks again after an
    answer, for events after the newest it got, as an sFlow-RT script
    does) and 10 streaming /stream, until stopped: raw HTTP/1.1 on one
    thread, so that the clients' own CPU (on the agent's two cores) stays
    near nothing. Python threads with urllib and a curl process per stream
    took 70-100 ms of CPU per run, a sixth of the replay's."""
    sel = selectors.DefaultSelector()
    stream = "/stream" + (f"?types={types}" if types else "")

    def ask(path, poll):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, [poll, b""])

    for _ in range(50):
        ask("/events/json?eventID=0&timeout=5", True)
    for _ in range(10):
        ask(stream, False)
    while not stop.is_set() and sel.get_map():
        for key, _ in sel.select(timeout=0.05):
            poll, body = key.data
            try:
                chunk = key.fileobj.recv(1 << 16)
            except OSError:
                chunk = b""
            if poll:
                key.data[1] = body + chunk
            if chunk:
                continue
            sel.unregister(key.fileobj)
            key.fileobj.close()
            if poll and not stop.is_set():
                after = body.split(b'"event_id":')[-1].split(b",", 1)[0] if b'"event_id":' in body else b"0"
                try:
                    ask(f"/events/json?eventID={int(after)}&timeout=5", True)
                except OSError:
                    pass  # the agent has gone
    for key in list(sel.get_map().values()):
        key.fileobj.close()


def run(case):
    out = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False).name
    cmd = [flowstatd, "replay", capture, "-c", config, "-o", out]
    port = free_port()
    if case != "no API":
        cmd += ["--api", f"127.0.0.1:{port}"]
    stop = threading.Event()
    load = None
    start = time.perf_counter()
    agent = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    if case == "API, 50 long-polls + 10 streams":
        # The clients start once the API listens (the replay starts right
        # after), so that none spins on a refused connection meanwhile.
        while agent.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.001)
        load = threading.Thread(target=clients, args=(port, types, stop))
        load.start()
    _, status, usage = os.wait4(agent.pid, 0)
    wall = time.perf_counter() - start
    stop.set()
    if load:
        load.join()
    assert os.waitstatus_to_exitcode(status) == 0, f"{case}: flowstatd failed"
    with open(out, "rb") as f:
        records = sum(1 for _ in f)
    os.unlink(out)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, records


def kernel_floor():
    """CPU seconds (user + system) that sending the replay's records to 10
    loopback TCP clients takes a sender that does nothing else; the
    clients read in a process of their own, as in the load case."""
    out = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False).name
    subprocess.run([flowstatd, "replay", capture, "-c", config, "-o", out],
                   stderr=subprocess.DEVNULL, check=True)
    with open(out, "rb") as f:
        data = memoryview(f.read())
    os.unlink(out)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(10)
        port = server.getsockname()[1]
        reader = os.fork()
        if reader == 0:
            sel = selectors.DefaultSelector()
            for _ in range(10):
                sel.register(socket.create_connection(("127.0.0.1", port)), selectors.EVENT_READ)
            while sel.get_map():
                for key, _ in sel.select():
                    if not key.fileobj.recv(1 << 16):
                        sel.unregister(key.fileobj)
            os._exit(0)
        conns = [server.accept()[0] for _ in range(10)]
    before = os.times()
    for at in range(0, len(data), 1 << 16):
        for c in conns:
            c.sendall(data[at:at + (1 << 16)])
    for c in conns:
        c.close()
    after = os.times()
    os.waitpid(reader, 0)
    return after.user - before.user + after.system - before.system


cases = ["no API", "API, no client", "API, 50 long-polls + 10 streams"]
results = {c: [] for c in cases}
for _ in range(runs):
    for c in cases:
        results[c].append(run(c))
print(f"{capture}, {runs} runs each (medians), {os.cpu_count()} cores, streams of {types or 'every record'}")
print(f"{'case':34} {'wall s':>7} {'cpu s':>7} {'RSS MiB':>8} {'records':>9}")
base_wall = base_cpu = None
for c in cases:
    wall, cpu, rss, records = (statistics.median(x) for x in zip(*results[c]))
    base_wall = base_wall or wall
    base_cpu = base_cpu or cpu
    counts = {r[3] for r in results[c]}
    print(f"{c:34} {wall:7.3f} {cpu:7.3f} {rss:8.1f} {records:9.0f}"
          f"   wall {wall / base_wall - 1:+.1%}, cpu {cpu / base_cpu - 1:+.1%}"
          + ("" if len(counts) == 1 else f"  (records differ between runs: {sorted(counts)})"))
if not types:
    floor = statistics.median(kernel_floor() for _ in range(runs))
    print(f"floor: the same records sent to 10 loopback clients by a sender that does"
          f" nothing else: {floor:.3f} s CPU")
