#!/usr/bin/env python3
"""Measures a running set of serf agents through their RPC ports (msgpack over
TCP), for bench/serf_compare.sh. Python standard library only: a minimal
msgpack codec is included.

Usage: serf_rpc_probe.py RPC_BASE_PORT NODES SEED_BIND_ADDR VICTIM_PID_FILE

Phases (times from the start of each phase):
  join    every agent but the seed is told to join the seed at once; per
          agent, the time until `members` lists NODES alive members;
  failure the last agent is killed with SIGKILL; per live agent, the time
          until it lists it as failed;
  event   agent 1 sends a user event (coalesce off); per live agent, the
          time until its `stream` of user events delivers it.
Each agent is polled every POLL_S seconds over a persistent connection.
"""

import os
import select
import signal
import socket
import struct
import sys
import time

POLL_S = 0.005
PHASE_DEADLINE_S = 120.0


# --- minimal msgpack -------------------------------------------------------

def pack(obj):
    if obj is None:
        return b"\xc0"
    if obj is True:
        return b"\xc3"
    if obj is False:
        return b"\xc2"
    if isinstance(obj, int):
        if 0 <= obj < 128:
            return bytes([obj])
        if 0 <= obj < 2**32:
            return b"\xce" + struct.pack(">I", obj)
        return b"\xd3" + struct.pack(">q", obj)
    if isinstance(obj, str):
        data = obj.encode()
        if len(data) < 32:
            return bytes([0xA0 | len(data)]) + data
        return b"\xda" + struct.pack(">H", len(data)) + data
    if isinstance(obj, (bytes, bytearray)):
        return b"\xc5" + struct.pack(">H", len(obj)) + bytes(obj)
    if isinstance(obj, (list, tuple)):
        return b"\xdc" + struct.pack(">H", len(obj)) + b"".join(pack(x) for x in obj)
    if isinstance(obj, dict):
        out = b"\xde" + struct.pack(">H", len(obj))
        for key, value in obj.items():
            out += pack(key) + pack(value)
        return out
    raise TypeError(type(obj))


class NeedMore(Exception):
    pass


def unpack(buf, pos=0):
    """Returns (object, next position); raises NeedMore if buf is short."""
    def need(n):
        if pos + n > len(buf):
            raise NeedMore()

    need(1)
    b = buf[pos]
    pos += 1

    def take(n):
        nonlocal pos
        need(n)
        chunk = buf[pos:pos + n]
        pos += n
        return chunk

    if b <= 0x7F:
        return b, pos
    if b >= 0xE0:
        return b - 0x100, pos
    if 0x80 <= b <= 0x8F:
        return unpack_map(buf, pos, b & 0x0F)
    if 0x90 <= b <= 0x9F:
        return unpack_array(buf, pos, b & 0x0F)
    if 0xA0 <= b <= 0xBF:
        return bytes(take(b & 0x1F)).decode(errors="replace"), pos
    if b == 0xC0:
        return None, pos
    if b == 0xC2:
        return False, pos
    if b == 0xC3:
        return True, pos
    sizes = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}
    if b in sizes:
        n = int.from_bytes(take(sizes[b]), "big")
        data = bytes(take(n))
        return (data if b in (0xC4, 0xC5, 0xC6) else data.decode(errors="replace")), pos
    ints = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q",
            0xCA: ">f", 0xCB: ">d"}
    if b in ints:
        fmt = ints[b]
        return struct.unpack(fmt, take(struct.calcsize(fmt)))[0], pos
    if b in (0xDC, 0xDD):
        n = int.from_bytes(take(2 if b == 0xDC else 4), "big")
        return unpack_array(buf, pos, n)
    if b in (0xDE, 0xDF):
        n = int.from_bytes(take(2 if b == 0xDE else 4), "big")
        return unpack_map(buf, pos, n)
    fixext = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}
    if b in fixext:
        take(1 + fixext[b])
        return None, pos
    raise ValueError("msgpack type 0x%02x" % b)


def unpack_map(buf, pos, n):
    out = {}
    for _ in range(n):
        key, pos = unpack(buf, pos)
        value, pos = unpack(buf, pos)
        out[key] = value
    return out, pos


def unpack_array(buf, pos, n):
    out = []
    for _ in range(n):
        value, pos = unpack(buf, pos)
        out.append(value)
    return out, pos


# --- serf RPC -------------------------------------------------------------

class Rpc:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.seq = 0
        self.call("handshake", {"Version": 1})

    def send(self, command, body=None):
        self.seq += 1
        data = pack({"Command": command, "Seq": self.seq})
        if body is not None:
            data += pack(body)
        self.sock.sendall(data)
        return self.seq

    def read_object(self):
        while True:
            try:
                obj, pos = unpack(self.buf)
                self.buf = self.buf[pos:]
                return obj
            except NeedMore:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("serf closed the RPC connection")
                self.buf += chunk

    def call(self, command, body=None, has_reply_body=False):
        self.send(command, body)
        header = self.read_object()
        if header.get("Error"):
            raise RuntimeError("%s: %s" % (command, header["Error"]))
        return self.read_object() if has_reply_body else None

    def members(self):
        return self.call("members", None, has_reply_body=True)["Members"]


def summary(times):
    done = sorted(t for t in times if t is not None)
    missing = len(times) - len(done)
    if not done:
        return "none of %d finished" % len(times)
    text = "median %.3f s, max %.3f s" % (done[(len(done) - 1) // 2], done[-1])
    if missing:
        text += " (%d not within %.0f s)" % (missing, PHASE_DEADLINE_S)
    return text


def poll(rpcs, start, check):
    times = [None] * len(rpcs)
    while time.monotonic() - start < PHASE_DEADLINE_S:
        for i, rpc in enumerate(rpcs):
            if times[i] is None:
                try:
                    if check(rpc):
                        times[i] = time.monotonic() - start
                except (OSError, EOFError, RuntimeError):
                    pass
        if all(t is not None for t in times):
            break
        time.sleep(POLL_S)
    return times


def main():
    base, nodes, seed_bind, victim_pid_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    rpcs = [Rpc(base + i) for i in range(nodes)]

    start = time.monotonic()
    for rpc in rpcs[1:]:
        rpc.send("join", {"Existing": [seed_bind], "Replay": False})
    for rpc in rpcs[1:]:
        header = rpc.read_object()
        if header.get("Error"):
            print("join error:", header["Error"], file=sys.stderr)
        rpc.read_object()

    def all_alive(rpc):
        return sum(1 for m in rpc.members() if m["Status"] == "alive") == nodes

    joined = poll(rpcs, start, all_alive)
    print("serf join: every agent sees %d alive: %s" % (nodes, summary(joined)), flush=True)

    time.sleep(2)
    victim_name = "serf%d" % nodes
    with open(victim_pid_file) as f:
        victim_pid = int(f.read().strip())
    live = rpcs[:-1]
    start = time.monotonic()
    os.kill(victim_pid, signal.SIGKILL)

    def victim_failed(rpc):
        return any(m["Name"] == victim_name and m["Status"] == "failed" for m in rpc.members())

    failed = poll(live, start, victim_failed)
    print("serf failure: killed agent failed at every live agent: %s" % summary(failed), flush=True)

    # One stream of user events per live agent, opened before the event.
    streams = [Rpc(base + i) for i in range(nodes - 1)]
    for stream in streams:
        stream.call("stream", {"Type": "user"})
    time.sleep(0.5)
    start = time.monotonic()
    rpcs[0].call("event", {"Name": "bench", "Payload": b"payload", "Coalesce": False})
    got = [None] * len(streams)
    by_fd = {s.sock.fileno(): i for i, s in enumerate(streams)}
    for s in streams:
        s.sock.setblocking(False)
    while time.monotonic() - start < PHASE_DEADLINE_S and any(t is None for t in got):
        ready, _, _ = select.select([s.sock for s in streams], [], [], 0.05)
        now = time.monotonic() - start
        for sock in ready:
            i = by_fd[sock.fileno()]
            try:
                streams[i].buf += sock.recv(65536)
            except BlockingIOError:
                continue
            # Records arrive as (header, body) pairs; any body naming the
            # event counts.
            while True:
                try:
                    obj, pos = unpack(streams[i].buf)
                except NeedMore:
                    break
                streams[i].buf = streams[i].buf[pos:]
                if isinstance(obj, dict) and obj.get("Name") == "bench" and got[i] is None:
                    got[i] = now
    print("serf event: one user event reached every live agent: %s" % summary(got), flush=True)


if __name__ == "__main__":
    main()
