"""One measurement of the pipeline benchmark's os-m3-engine rows.

    python pipe_os_m3.py tiny|10us N

Runs N integers through os-m3-engine 0.1.2 with its default engine (one frontend
thread, three transport threads, one backend thread, queues of 100): the frontend
yields 0..N-1, the transport adds one (after spinning 10 us on the clock in the 10us
row), the backend adds them up. Prints RESULT <nanoseconds> from start() to the last
item consumed, after checking the backend's sum.
"""

import sys
import threading
import time

# os-m3-engine 0.1.2 calls Thread.isAlive, which Python 3.9 removed: give it back the
# same method under its old name (no other change to the engine).
if not hasattr(threading.Thread, "isAlive"):
    threading.Thread.isAlive = threading.Thread.is_alive

from os_m3_engine.core.backend import Backend
from os_m3_engine.core.frontend import Frontend
from os_m3_engine.core.transport import Transport
from os_m3_engine.launcher import create


class Settings(object):
    pass


class Numbers(Frontend):
    def produce(self):
        for i in range(self.config.n):
            yield i


class Step(Transport):
    def transport(self, data):
        spin = self.config.spin
        if spin:
            until = time.perf_counter() + spin
            while time.perf_counter() < until:
                pass
        return data + 1


TOTAL = [0, 0]
LOCK = threading.Lock()


class Sum(Backend):
    def process(self, data):
        with LOCK:
            TOTAL[0] += data
            TOTAL[1] += 1


def main():
    row, n = sys.argv[1], int(sys.argv[2])
    settings = Settings()
    settings.n = n
    settings.spin = 10e-6 if row == "10us" else 0.0
    engine = create(frontend_cls=Numbers, transport_cls=Step, backend_cls=Sum,
                    app_config=settings)
    began = time.perf_counter_ns()
    engine.start()
    took = time.perf_counter_ns() - began
    # The engine returns once one stage is dead; the backend may still be draining.
    deadline = time.time() + 60
    while TOTAL[1] < n and time.time() < deadline:
        time.sleep(0.001)
    took = time.perf_counter_ns() - began
    if TOTAL[0] != n * (n + 1) // 2:
        sys.stderr.write("os-m3-engine: the backend got %d items summing to %d\n" % (TOTAL[1], TOTAL[0]))
        sys.exit(1)
    print("RESULT %d" % took)


if __name__ == "__main__":
    main()
