#!/usr/bin/env python3
"""The memory of a farm (tests/farm/farm.sh): every process in its hosts' namespaces (the
namespace holder, sshd, nginx and what they started) and its balancer's (Varnish, HAProxy),
as proportional set size (PSS: shared pages split between the processes sharing them).

    farm_memory.py FARM_DIR      prints "MB PROCESSES"
"""
import os
import sys

farm = sys.argv[1]
pids_dir = os.path.join(farm, "pids")


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


namespaces = set()
roots = set()
for name in os.listdir(pids_dir):
    pid = (read(os.path.join(pids_dir, name)) or "").strip()
    if not pid.isdigit():
        continue
    if name.startswith("ns-"):
        try:
            namespaces.add(os.readlink(f"/proc/{pid}/ns/mnt"))
        except OSError:
            pass
    else:
        roots.add(int(pid))

parents = {}
for name in os.listdir("/proc"):
    if name.isdigit():
        stat = read(f"/proc/{name}/stat")
        if stat:
            parents[int(name)] = int(stat.rsplit(")", 1)[1].split()[1])


def under_root(pid):
    seen = 0
    while pid > 1 and seen < 64:
        if pid in roots:
            return True
        pid, seen = parents.get(pid, 1), seen + 1
    return False


total_kb, count = 0, 0
for pid in parents:
    try:
        mine = os.readlink(f"/proc/{pid}/ns/mnt") in namespaces
    except OSError:
        continue
    if not (mine or under_root(pid)):
        continue
    rollup = read(f"/proc/{pid}/smaps_rollup") or ""
    pss = next((int(l.split()[1]) for l in rollup.splitlines() if l.startswith("Pss:")), 0)
    total_kb += pss
    count += 1
print(f"{total_kb / 1024:.0f} {count}")
