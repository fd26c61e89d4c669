#!/usr/bin/env python3
"""Runs a command and watches it and the ssh master connections it opens, from /proc.

    sample.py OUT.json CMD [ARG...]

Every 50 ms until CMD exits: its own peak RSS (VmHWM), CPU seconds (utime + stime), open file
descriptors; and, for each `ssh -M` master started after CMD whose control socket is an
openssh-crate `.ssh-connection` folder (deploy's), its RSS, CPU and bytes written (`wchar`
of /proc/PID/io: what it sent to its host, plus what it passes back to deploy) and, four
times a second from `ss`, the bytes its TCP connection sent (acked by the host) and received.
deploy closes its masters before it exits, so their last sample is their total (the last
quarter second may be missed). Writes one JSON object to OUT.json and exits
with CMD's status.
"""
import json
import re
import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return None


def stat_fields(pid):
    stat = read(f"/proc/{pid}/stat")
    # After the command's name: fields[0] is the state (field 3 of proc(5)).
    return stat.rsplit(")", 1)[1].split() if stat else None


def cpu(pid):
    fields = stat_fields(pid)
    if not fields:
        return None, None
    # utime is field 14, stime 15, starttime 22.
    return (int(fields[11]) + int(fields[12])) / TICK, int(fields[19])


def status_kb(pid, key):
    text = read(f"/proc/{pid}/status") or ""
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def masters(since):
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        cmd = read(f"/proc/{name}/cmdline")
        if not cmd:
            continue
        args = cmd.split("\0")
        if not args[0].endswith("ssh") or "-M" not in args or ".ssh-connection" not in cmd:
            continue
        fields = stat_fields(name)
        # `ssh -f` forks once authenticated: the master is the child, a session leader
        # (field 6, the session id, is its own pid); its parent exits at once.
        if fields and int(fields[19]) >= since and fields[3] == name:
            found.append(int(name))
    return found


def tcp_counts(pids):
    """Bytes acked and received on each established ssh connection of `pids` (from ss)."""
    try:
        out = subprocess.run(["ss", "-tinpH", "state", "established", "( dport = :22 )"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    counts, conn = {}, None
    for line in out.splitlines():
        if not line.startswith((" ", "\t")):
            fields = line.split()
            pid = re.search(r"pid=(\d+)", line)
            conn = (fields[2], fields[3]) if len(fields) > 3 and pid and int(pid[1]) in pids else None
        elif conn:
            acked = re.search(r"bytes_acked:(\d+)", line)
            got = re.search(r"bytes_received:(\d+)", line)
            counts[conn] = (int(acked[1]) if acked else 0, int(got[1]) if got else 0)
    return counts


def main():
    out, cmd = sys.argv[1], sys.argv[2:]
    proc = subprocess.Popen(cmd)
    _, started = cpu(proc.pid)
    own = {"rss_kb": 0, "cpu_s": 0.0, "fds": 0}
    ssh = {}  # pid -> {rss_kb, cpu_s, wchar}
    most_at_once = 0
    live, scanned = [], 0.0
    tcp = {}  # (local, peer) -> (bytes acked, bytes received), from ss
    while proc.poll() is None:
        hwm = status_kb(proc.pid, "VmHWM")
        used, _ = cpu(proc.pid)
        try:
            fds = len(os.listdir(f"/proc/{proc.pid}/fd"))
        except OSError:
            fds = 0
        if hwm:
            own["rss_kb"] = max(own["rss_kb"], hwm)
        if used is not None:
            own["cpu_s"] = used
        own["fds"] = max(own["fds"], fds)
        # Finding new masters reads every process's cmdline: four times a second is enough.
        if started is not None and time.monotonic() - scanned > 0.25:
            live, scanned = masters(started), time.monotonic()
            for conn, (acked, got) in tcp_counts(set(live)).items():
                old = tcp.get(conn, (0, 0))
                tcp[conn] = (max(old[0], acked), max(old[1], got))
        most_at_once = max(most_at_once, len(live))
        for pid in live:
            seen = ssh.setdefault(pid, {"rss_kb": 0, "cpu_s": 0.0, "wchar": 0})
            rss = status_kb(pid, "VmRSS")
            used, _ = cpu(pid)
            io = read(f"/proc/{pid}/io") or ""
            wchar = next((int(l.split()[1]) for l in io.splitlines() if l.startswith("wchar:")), None)
            if rss:
                seen["rss_kb"] = max(seen["rss_kb"], rss)
            if used is not None:
                seen["cpu_s"] = used
            if wchar is not None:
                seen["wchar"] = wchar
        time.sleep(0.05)
    result = {
        "exit": proc.returncode,
        "own": own,
        "ssh_processes": len(ssh),
        "ssh_at_once": most_at_once,
        "ssh_rss_kb": sum(s["rss_kb"] for s in ssh.values()),
        "ssh_cpu_s": round(sum(s["cpu_s"] for s in ssh.values()), 2),
        "ssh_written": sum(s["wchar"] for s in ssh.values()),
        "tcp_sent": sum(acked for acked, _ in tcp.values()),
        "tcp_received": sum(got for _, got in tcp.values()),
    }
    with open(out, "w") as f:
        json.dump(result, f)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
