"""The CPU seconds of a load step (bench.load, bench.paths): the server's processes, this
database's PostgreSQL backends, the load generator and the whole machine."""

from __future__ import annotations

import time

import psutil

from bench.common import (
    Server,
)


class CpuMeter:
    """CPU seconds used by the server's processes, by this database's PostgreSQL backends,
    by this load generator, and by the whole machine, between two readings."""

    def __init__(self, server: Server, database: str) -> None:
        self.server, self.database = server, database
        self.me = psutil.Process()

    def _backends(self) -> list[psutil.Process]:
        procs = []
        for p in psutil.process_iter(["name", "cmdline"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if p.info["name"] == "postgres" and f" {self.database} " in cmd:
                procs.append(p)
        return procs

    def read(self) -> dict[str, dict[int, float]]:
        """Cumulative CPU seconds per process id, by group, and the machine's busy seconds."""

        def used(procs: list[psutil.Process]) -> dict[int, float]:
            out = {}
            for p in procs:
                try:
                    t = p.cpu_times()
                    out[p.pid] = t.user + t.system
                except psutil.NoSuchProcess:
                    continue
            return out

        parent = psutil.Process(self.server.proc.pid)
        machine = psutil.cpu_times()
        return {
            "server": used([parent, *parent.children(recursive=True)]),
            "postgres": used(self._backends()),
            "driver": used([self.me]),
            "machine": {0: sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)},
            "wall": {0: time.perf_counter()},
        }

    @staticmethod
    def seconds(
        before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
    ) -> dict[str, float]:
        """CPU seconds of each group between two readings (processes that started in
        between count from zero; those that ended in between are missed)."""
        return {
            group: sum(v - before[group].get(pid, 0.0) for pid, v in after[group].items())
            for group in after
        }

    @staticmethod
    def line(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> str:
        used = CpuMeter.seconds(before, after)
        share = {k: v / used["wall"] * 100 for k, v in used.items()}
        others = share["machine"] - share["server"] - share["postgres"] - share["driver"]
        return (
            f"CPU (% of one core): server {share['server']:.0f}, its PostgreSQL backends "
            f"{share['postgres']:.0f}, load generator {share['driver']:.0f}, other programs "
            f"{max(others, 0):.0f}; machine busy {share['machine']:.0f} of "
            f"{psutil.cpu_count() * 100}"
        )
