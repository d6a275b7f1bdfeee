"""A clock a test moves by hand: retries, timeouts and escalations come due when the test says,
not after real waiting."""


class ManualClock:
    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
