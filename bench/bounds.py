#!/usr/bin/env python3
"""The four figures of issue 10 §3 ("one client must not crash or starve the daemon"), each
measured against a real `custos serve` (or `custos check`) over several rounds, with the median
and the spread (min..max). Standard library only; run as root for `trickle` (it attacks from
uid 65534 with setpriv).

    python3 bench/bounds.py request-chain [--length 12850] [--chains 1] [--concurrent 1] [--rounds 5] [--floor]
    python3 bench/bounds.py folder-chain  [--depth 16000] [--rounds 5]
    python3 bench/bounds.py amplification [--connections 40] [--rounds 3]
    python3 bench/bounds.py trickle       [--connections 1100] [--seconds 30] [--samples 40]
    python3 bench/bounds.py big-folder    [--entities 100031] [--samples 40] [--rounds 3]

`--custos BIN` picks the binary under test (default .build/release/custos), so the same command
measures another build, e.g. the one before the bounds. docs/security.md, "Limits", lists the
figures and the commands that produced them.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def mib(kb):
    return kb / 1024.0


def summary(name, values, unit, fmt="{:.1f}"):
    if not values:
        return f"{name}: no samples"
    med = statistics.median(values)
    return (f"{name}: median {fmt.format(med)} {unit}, spread {fmt.format(min(values))}..{fmt.format(max(values))} {unit}"
            f" over {len(values)} runs")


class Daemon:
    """`custos serve` on a private socket, with the example policies unless a folder is given."""

    def __init__(self, custos, policies=None, config=None, mode=0o700):
        self.dir = tempfile.mkdtemp(prefix="cxb-")
        os.chmod(self.dir, mode)
        self.socket = os.path.join(self.dir, "c.sock")
        args = [custos, "serve", "--policies", policies or os.path.join(ROOT, "policies"),
                "--state", self.dir, "--socket", self.socket]
        if config is not None:
            path = os.path.join(self.dir, "config.json")
            with open(path, "w") as f:
                json.dump(config, f)
            args += ["--config", path]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.health = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("custos serve exited: " + self.proc.stderr.read().decode(errors="replace"))
            try:
                self.health = call(self.socket, {"jsonrpc": "2.0", "id": 0, "method": "health"})
                break
            except OSError:
                time.sleep(0.01)
        self.up_seconds = time.monotonic() - self.started
        if self.health is None:
            raise RuntimeError("custos serve did not answer")

    def kb(self, field):
        return status_kb(self.proc.pid, field)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def call(path, obj, timeout=600):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    try:
        s.sendall(json.dumps(obj, separators=(",", ":")).encode() + b"\n")
        return json.loads(s.makefile("rb").readline())
    finally:
        s.close()


def chain(n, type_="U", top=None, prefix=""):
    out = []
    for i in range(n):
        parents = [{"type": type_, "id": f"{prefix}{i + 1}"}] if i + 1 < n else ([top] if top else [])
        out.append({"uid": {"type": type_, "id": f"{prefix}{i}"}, "attrs": {}, "parents": parents})
    return out


def request_chain(a):
    """(1) A decide carrying a parent chain of request entities: time to the answer and the
    daemon's peak RSS (VmHWM) above what it had before the request."""
    ents = []
    for k in range(a.chains):
        ents += chain(a.length, top={"type": "Role", "id": "data_scientist"}, prefix=f"c{k}." if k else "")
    line = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "decide", "params": {
        "principal": {"type": "U", "id": "0"}, "action": {"type": "Action", "id": "read"},
        "resource": {"type": "Dataset", "id": "onc301-de-clinical"}, "entities": ents}},
        separators=(",", ":")).encode() + b"\n"
    if a.floor:
        # The same bytes to a method that does not exist: the cost of reading the line alone.
        line = line.replace(b'"method":"decide"', b'"method":"decide.floor"')
    print(f"request: {a.chains} x {a.length}-entity chain, {len(line)} bytes, {a.concurrent} at once"
          + (" (parse floor: unknown method)" if a.floor else ""))
    times, peaks, answers = [], [], set()
    for r in range(a.rounds):
        d = Daemon(a.custos)
        try:
            before = d.kb("VmHWM")
            results = [None] * a.concurrent

            def one(k):
                s = socket.socket(socket.AF_UNIX)
                s.settimeout(3600)
                s.connect(d.socket)
                t0 = time.monotonic()
                s.sendall(line)
                reply = s.makefile("rb").readline()
                results[k] = (time.monotonic() - t0, reply)
                s.close()

            threads = [threading.Thread(target=one, args=(k,)) for k in range(a.concurrent)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            alive = d.proc.poll() is None
            peak = d.kb("VmHWM") if alive else None
            for dt, reply in results:
                times.append(dt * 1000)
                try:
                    j = json.loads(reply)
                    answers.add(f"error {j['error']['code']}: {j['error']['message'][:110]}" if "error" in j
                                else f"decision {j['result']['decision']}")
                except Exception:
                    answers.add(f"no answer ({'daemon alive' if alive else 'daemon died'})")
            if peak is not None:
                peaks.append(mib(peak - before))
            print(f"  round {r + 1}: {', '.join(f'{dt * 1000:.1f} ms' for dt, _ in results)}, "
                  f"peak RSS +{mib(peak - before):.1f} MiB" if peak else "  daemon died")
        finally:
            d.stop()
    for x in sorted(answers):
        print("  answer:", x)
    print(summary("time to answer", times, "ms"))
    print(summary("daemon peak RSS growth", peaks, "MiB"))


def big_folder(a):
    """The folder's ancestors are not recomputed per request: decide latency on a folder of
    --entities entities, without request entities and with one (a session whose parent is a
    folder user), each over --samples sequential decides on one connection."""
    folder = tempfile.mkdtemp(prefix="cxg-")
    try:
        roles = 30
        ents = [{"uid": {"type": "Role", "id": f"r{k}"}, "attrs": {}, "parents": []} for k in range(roles)]
        ents += [{"uid": {"type": "User", "id": f"u{i}"}, "attrs": {}, "parents": [{"type": "Role", "id": f"r{i % roles}"}]}
                 for i in range(a.entities - roles)]
        with open(os.path.join(folder, "entities.json"), "w") as f:
            json.dump(ents, f, separators=(",", ":"))
        with open(os.path.join(folder, "p.cedar"), "w") as f:
            f.write('permit(principal in Role::"r5", action, resource);\n')
        print(f"folder: {len(ents)} entities")
        for r in range(a.rounds):
            d = Daemon(a.custos, policies=folder)
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(d.socket)
                reader = s.makefile("rb")
                for label, extra in (("no request entities", None),
                                     ("one request entity", [{"uid": {"type": "Session", "id": "s"}, "attrs": {},
                                                              "parents": [{"type": "User", "id": "u5"}]}])):
                    params = {"principal": {"type": "Session", "id": "s"} if extra else {"type": "User", "id": "u5"},
                              "action": {"type": "Action", "id": "read"}, "resource": {"type": "Doc", "id": "d"}}
                    if extra:
                        params["entities"] = extra
                    line = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "decide", "params": params}).encode() + b"\n"
                    lat, answer = [], None
                    for _ in range(a.samples):
                        t0 = time.monotonic()
                        s.sendall(line)
                        answer = json.loads(reader.readline())
                        lat.append((time.monotonic() - t0) * 1000)
                    what = answer.get("result", {}).get("decision") or answer.get("error", {}).get("message")
                    print(f"  round {r + 1}, {label} ({what}): "
                          + summary("decide round trip", lat, "ms", "{:.3f}").replace(" runs", " decides"))
                s.close()
            finally:
                d.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def folder_chain(a):
    """(2) entities.json holding a parent chain: `custos check` (time, max RSS, exit status) and
    the daemon's start (time until it answers health, its RSS, what health says)."""
    folder = tempfile.mkdtemp(prefix="cxf-")
    try:
        with open(os.path.join(folder, "entities.json"), "w") as f:
            json.dump(chain(a.depth, "G"), f, separators=(",", ":"))
        with open(os.path.join(folder, "p.cedar"), "w") as f:
            f.write("permit(principal, action, resource);\n")
        size = os.path.getsize(os.path.join(folder, "entities.json"))
        print(f"folder: {a.depth}-deep chain, entities.json {size / 1e6:.2f} MB")
        ctimes, crss, starts, drss, outcomes = [], [], [], [], set()
        for r in range(a.rounds):
            t0 = time.monotonic()
            p = subprocess.Popen([a.custos, "check", "--policies", folder],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            _, st, ru = os.wait4(p.pid, 0)
            dt = time.monotonic() - t0
            p.returncode = os.waitstatus_to_exitcode(st)
            err = p.stderr.read().decode(errors="replace").strip().splitlines()
            ctimes.append(dt * 1000)
            crss.append(ru.ru_maxrss / 1024.0)
            outcomes.add(f"check: exit {p.returncode}: {err[-1][:160] if err else 'ok'}")
            d = Daemon(a.custos, policies=folder)
            try:
                starts.append(d.up_seconds * 1000)
                drss.append(mib(d.kb("VmHWM")))
                h = d.health.get("result", {})
                outcomes.add(f"serve: ready={h.get('ready')} {(h.get('reasons') or [''])[0][:140]}")
            finally:
                d.stop()
            print(f"  round {r + 1}: check {dt * 1000:.0f} ms maxrss {ru.ru_maxrss / 1024:.1f} MiB; "
                  f"serve answered after {starts[-1]:.0f} ms, peak RSS {drss[-1]:.1f} MiB")
        for x in sorted(outcomes):
            print("  ", x)
        print(summary("custos check time", ctimes, "ms", "{:.0f}"))
        print(summary("custos check max RSS", crss, "MiB"))
        print(summary("custos serve: start to first health answer", starts, "ms", "{:.0f}"))
        print(summary("custos serve peak RSS", drss, "MiB"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def amplification(a):
    """(3) N connections that each send a 1 MiB line `[1,1,...]` and never read: the daemon's
    RSS once every connection has its answer waiting (or after --wait seconds), and its peak."""
    line = b"[" + b"1," * ((1 << 20) // 2 - 2) + b"1]\n"
    print(f"{a.connections} connections x {len(line)}-byte line, never read")
    rss, peaks = [], []
    for r in range(a.rounds):
        d = Daemon(a.custos)
        socks = []
        try:
            base_rss, base_peak = d.kb("VmRSS"), d.kb("VmHWM")
            for _ in range(a.connections):
                s = socket.socket(socket.AF_UNIX)
                s.connect(d.socket)
                socks.append(s)
            senders = [threading.Thread(target=s.sendall, args=(line,)) for s in socks]
            for t in senders:
                t.start()
            for t in senders:
                t.join()
            # Until every connection has something to read (the daemon answered it), or --wait.
            deadline = time.monotonic() + a.wait
            import select
            while time.monotonic() < deadline:
                ready = [s for s in socks if select.select([s], [], [], 0)[0]]
                if len(ready) == len(socks):
                    break
                time.sleep(0.05)
            now_rss, peak = d.kb("VmRSS"), d.kb("VmHWM")
            rss.append(mib(now_rss - base_rss))
            peaks.append(mib(peak - base_peak))
            first = b""
            socks[0].settimeout(5)
            try:
                first = socks[0].recv(300)
            except OSError:
                pass
            print(f"  round {r + 1}: RSS +{rss[-1]:.1f} MiB, peak +{peaks[-1]:.1f} MiB; first reply bytes: {first[:120]!r}")
        finally:
            for s in socks:
                s.close()
            d.stop()
    print(summary("daemon RSS growth with the answers unread", rss, "MiB"))
    print(summary("daemon peak RSS growth", peaks, "MiB"))


def trickle(a):
    """(4) `health` latency from the admin (this uid, the daemon's) while N connections from
    uid 65534 trickle a byte a second (custos bench trickle, reconnecting what is closed).
    Each sample is a new connection: connect, health, answer."""
    if os.getuid() != 0 or not shutil.which("setpriv"):
        sys.exit("trickle needs root and setpriv (it attacks from uid 65534)")
    tool = a.tool or a.custos
    for r in range(a.rounds):
        d = Daemon(a.custos, config={"socket": {"mode": "0666"}}, mode=0o755)
        attacker = None
        try:
            out = open(os.path.join(d.dir, "trickle.out"), "w")
            attacker = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", tool,
                                         "bench", "trickle", "--socket", d.socket, "--connections", str(a.connections),
                                         "--interval-ms", "1000", "--seconds", str(a.seconds)],
                                        stdout=out, stderr=subprocess.STDOUT)
            time.sleep(a.warmup)
            lat, refused, failed = [], 0, 0
            for _ in range(a.samples):
                t0 = time.monotonic()
                try:
                    j = call(d.socket, {"jsonrpc": "2.0", "id": 1, "method": "health"}, timeout=30)
                    if "result" in j:
                        lat.append((time.monotonic() - t0) * 1000)
                    else:
                        refused += 1
                except OSError:
                    failed += 1
                time.sleep(a.spacing)
            attacker.wait()
            with open(os.path.join(d.dir, "trickle.out")) as f:
                lines = f.read().strip().splitlines()
            print(f"  round {r + 1}: attacker: {lines[-1] if lines else '?'}")
            print(f"  round {r + 1}: health answered {len(lat)}/{a.samples}, refused {refused}, failed {failed}")
            if lat:
                print("  " + summary("health round trip (new connection each)", lat, "ms", "{:.2f}").replace(" runs", " samples"))
        finally:
            if attacker and attacker.poll() is None:
                attacker.terminate()
                attacker.wait()
            d.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("figure", choices=["request-chain", "folder-chain", "amplification", "trickle", "big-folder"])
    p.add_argument("--custos", default=os.path.join(ROOT, ".build/release/custos"))
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--length", type=int, default=12_850)
    p.add_argument("--concurrent", type=int, default=1)
    p.add_argument("--chains", type=int, default=1, help="request-chain: independent chains of --length each")
    p.add_argument("--floor", action="store_true", help="request-chain: send the line to an unknown method instead")
    p.add_argument("--depth", type=int, default=16_000)
    p.add_argument("--connections", type=int, default=None)
    p.add_argument("--wait", type=float, default=60)
    p.add_argument("--seconds", type=int, default=30)
    p.add_argument("--samples", type=int, default=40)
    p.add_argument("--entities", type=int, default=100_031, help="big-folder: entities in the folder")
    p.add_argument("--spacing", type=float, default=0.25)
    p.add_argument("--warmup", type=float, default=5)
    p.add_argument("--tool", default=None, help="trickle: the custos binary that runs the attack (default --custos)")
    a = p.parse_args()
    a.custos = os.path.abspath(a.custos)
    if a.figure == "request-chain":
        a.rounds = a.rounds or 5
        request_chain(a)
    elif a.figure == "folder-chain":
        a.rounds = a.rounds or 5
        folder_chain(a)
    elif a.figure == "amplification":
        a.rounds = a.rounds or 3
        a.connections = a.connections or 40
        amplification(a)
    elif a.figure == "big-folder":
        a.rounds = a.rounds or 3
        big_folder(a)
    else:
        a.rounds = a.rounds or 1
        a.connections = a.connections or 1_100
        trickle(a)


if __name__ == "__main__":
    main()
