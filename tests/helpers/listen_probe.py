"""Run by tests/unit/training/test_distributed.py under the local launcher (as
``-m helpers.listen_probe``): join the gloo group, and rank 0 writes the listening TCP sockets of
the launcher and all its workers to the file argv[1]."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from farside_gan.training import distributed as fd


def _children(ppid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == ppid:
                pids.append(int(entry.name))
    return pids


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd_link in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd_link)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def listening(pids) -> list[str]:
    inodes = set().union(*(_socket_inodes(p) for p in pids))
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                host, port = fields[1].split(":")
                found.append(f"{_address(host)}:{int(port, 16)}")
    return found


if __name__ == "__main__":
    with fd.distributed("cpu") as ctx:
        fd.barrier(ctx)  # every worker's sockets are up
        if ctx.is_main:
            launcher = os.getppid()
            Path(sys.argv[1]).write_text(json.dumps(listening([launcher, *_children(launcher)])))
        fd.barrier(ctx)
