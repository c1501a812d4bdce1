"""What the Spark benchmarks share: a child process timed, its peak memory
read from /proc for every process of its tree (Spark's JVM and Python workers
are the driver's descendants, which /usr/bin/time does not see)."""
import os
import re
import subprocess
import sys
import threading
import time


def timed(cmd, env=None, cwd=None):
    """Runs `cmd` under /usr/bin/time: (seconds, peak RSS MiB, stdout)."""
    out = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", *cmd], capture_output=True,
                         text=True, env=env, cwd=cwd, check=False)
    if out.returncode != 0:
        sys.exit(f"failed: {cmd}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    m = re.findall(r"TIME ([0-9.]+) ([0-9]+)", out.stderr)[-1]
    return float(m[0]), int(m[1]) / 1024.0, out.stdout.strip()


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def _hwm(pid: int) -> tuple[str, float] | None:
    """(kind, VmHWM MiB) of a live process: the JVM, a PySpark worker, or python."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        with open(f"/proc/{pid}/status") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None
    kind = "jvm" if "java" in cmd.split(" ")[0] else "worker" if "pyspark.daemon" in cmd or "worker" in cmd else "driver"
    return kind, kb / 1024.0


def sampled(cmd, env=None, cwd=None):
    """Runs `cmd`, sampling its process tree's peak RSS (VmHWM) by kind:
    (seconds, {kind: MiB}, stdout). Spark's JVM and Python workers are the
    driver's descendants, which /usr/bin/time does not see."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    peaks: dict[str, float] = {}
    out_chunks: list[str] = []

    def drain(stream, sink):
        for line in stream:
            sink.append(line)

    err_chunks: list[str] = []
    threads = [threading.Thread(target=drain, args=(p.stdout, out_chunks)),
               threading.Thread(target=drain, args=(p.stderr, err_chunks))]
    for t in threads:
        t.start()
    while p.poll() is None:
        todo, seen = [p.pid], set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            got = _hwm(pid)
            if got:
                peaks[got[0]] = max(peaks.get(got[0], 0.0), got[1])
            todo += _children(pid)
        time.sleep(0.1)
    for t in threads:
        t.join()
    secs = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"failed: {cmd}\n{''.join(out_chunks)[-3000:]}\n{''.join(err_chunks)[-3000:]}")
    return secs, peaks, "".join(out_chunks).strip()
