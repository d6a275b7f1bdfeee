"""Lab TAT alert benchmark: 50,000 tubes in flight, lifecycle events at 500/s.

Time is simulated (the engine's clock is advanced 2 ms per event, so the run covers
events/500 seconds of the lab's day); what is measured is the real time the engine takes to
evaluate each event: ``apply`` plus the ``tick`` that raises the deadlines passed since the
last event, with every change fanned out to the subscribed screens' queues. Tubes move one
stage at a time in a random order; a tube reported leaves and a new collected one takes its
place, so the number in flight stays at the target. Not a test: it prints figures.
The fan-out to real connected screens, end to end over MLLP, is ``bench/screens.py``.

    python bench/tat.py [--tubes 50000] [--events 60000] [--rate 500] [--screens 20] [--gc-freeze]
"""

import argparse
import asyncio
import gc
import random
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.base.hospital_time import HOSPITAL
from hub.lab.lifecycle import LifecycleEvent, Priority, Source, Stage, TrackDetails
from hub.lab.tat import AlertChange, AlertEngine

GROUPS = ["生化", "血常规", "感染免疫", "凝血", "尿液", "微生物"]
DEPARTMENTS = ["儿科", "急诊科", "呼吸内科", "心内科", "体检中心"]
# the stages a tube goes through one event at a time (a preliminary result only for some)
PATH = [s for s in Stage if s is not Stage.PRINTED]


class SimulatedClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class Lab:
    """The benchmark's own view of the tubes, to choose the next event quickly."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.stage: dict[str, int] = {}
        self.alive: list[str] = []
        self.serial = 0

    def new_tube(self, at: datetime) -> LifecycleEvent:
        self.serial += 1
        tube = f"spc-bench-{self.serial}"
        self.stage[tube] = PATH.index(Stage.COLLECTED)
        self.alive.append(tube)
        pick = self.random.choice
        details = TrackDetails(
            barcode=f"26030{self.serial:07d}",
            test_group=pick(GROUPS),
            priority=Priority.STAT if self.random.random() < 0.2 else Priority.ROUTINE,
            source=pick(list(Source)),
            department=pick(DEPARTMENTS),
        )
        return LifecycleEvent(Stage.COLLECTED, at, "bench", specimen=tube, details=details)

    def next_event(self, at: datetime) -> LifecycleEvent:
        index = self.random.randrange(len(self.alive))
        tube = self.alive[index]
        step = self.stage[tube] + 1
        if PATH[step] is Stage.PRELIMINARY and self.random.random() < 0.7:
            step += 1  # most analysers send the final result only
        if PATH[step] is Stage.REPORTED:
            self.alive[index] = self.alive[-1]  # the tube leaves; a new one replaces it
            self.alive.pop()
            del self.stage[tube]
        else:
            self.stage[tube] = step
        return LifecycleEvent(PATH[step], at, "bench", specimen=tube)


def preload(engine: AlertEngine, lab: Lab, clock: SimulatedClock, tubes: int) -> float:
    """Tubes collected over the last hour, each moved on a random number of stages, so
    their deadlines are spread over the run rather than all due at once."""
    began = time.perf_counter()
    start = clock.now
    for n in range(tubes):
        collected = start - timedelta(seconds=lab.random.uniform(0, 3600))
        engine.apply(lab.new_tube(collected))
        tube = lab.alive[-1]
        moved = collected
        for _ in range(lab.random.randrange(0, 7)):
            moved += timedelta(minutes=lab.random.uniform(1, 12))
            if moved >= start:
                break
            engine.apply(lab.next_event(min(moved, start)))
        if n % 10_000 == 0:
            engine.tick()
        assert tube in lab.stage
    engine.tick()
    return time.perf_counter() - began


async def run(args: argparse.Namespace) -> None:
    clock = SimulatedClock(datetime(2026, 3, 5, 10, 0, tzinfo=HOSPITAL))
    engine = AlertEngine(now=clock)
    lab = Lab(args.seed)
    load_seconds = preload(engine, lab, clock, args.tubes)
    open_after_load = len(engine.alerts())
    if args.gc_freeze:
        # the loaded tubes leave the collector's generations: a full collection over 50,000
        # tubes' containers otherwise pauses for a few hundred ms now and then
        gc.collect()
        gc.freeze()
    screens = [engine.subscribe() for _ in range(args.screens)]  # each loads alerts() first

    step = timedelta(seconds=1 / args.rate)
    latencies: list[float] = []
    delivered = 0
    for n in range(args.events):
        clock.now += step
        if len(lab.alive) < args.tubes:
            event = lab.new_tube(clock.now)
        else:
            event = lab.next_event(clock.now)
        began = time.perf_counter_ns()
        engine.apply(event)
        engine.tick()
        latencies.append((time.perf_counter_ns() - began) / 1e6)
        if n % args.rate == args.rate - 1:  # once a simulated second the screens read
            delivered += sum(drain(screen) for screen in screens)
            await asyncio.sleep(0)
    delivered += sum(drain(screen) for screen in screens)

    slowest = sorted(range(len(latencies)), key=latencies.__getitem__)[-5:]
    latencies.sort()
    busy = sum(latencies) / 1000
    print(f"tubes in flight: {engine.in_flight():,} (loaded in {load_seconds:.1f} s)")
    print(f"events: {args.events:,} at {args.rate}/s simulated ({args.events / args.rate:.0f} s)")
    print(
        f"evaluation latency ms: p50 {statistics.median(latencies):.3f}  "
        f"p99 {latencies[int(0.99 * len(latencies)) - 1]:.3f}  max {latencies[-1]:.3f}"
    )
    print(f"evaluation throughput: {args.events / busy:,.0f} events/s of engine time")
    print(
        f"alerts open after load {open_after_load:,}, at end {len(engine.alerts()):,}; "
        f"changes delivered to {args.screens} screens: {delivered:,} "
        f"(dropped {engine.dropped_changes})"
    )
    print(f"events over 1 ms: {sum(x > 1 for x in latencies)}; slowest at {sorted(slowest)}")


def drain(screen: "asyncio.Queue[AlertChange]") -> int:
    count = 0
    while not screen.empty():
        screen.get_nowait()
        count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tubes", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--rate", type=int, default=500, help="events per simulated second")
    parser.add_argument("--screens", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after the load")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
