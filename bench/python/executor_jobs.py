"""The Python peers of strata's executor benchmark (`bench/run --bench executor`,
`src/executor/`): one measurement per run of this program, as the Rust rows do.

    python executor_jobs.py ROW PEER N WORKERS

ROW is `empty` (jobs that give back their index), `spin` (jobs that hold the CPU for
10 microseconds, a spin on `time.perf_counter_ns`, then give back their index),
`processes` (empty jobs on worker processes) or `periodic`. PEER is `cf-threads`
(`concurrent.futures.ThreadPoolExecutor`), `futurist` (`futurist.ThreadPoolExecutor`),
`cf-processes` (`concurrent.futures.ProcessPoolExecutor`) or, for `periodic`,
`futurist-periodics`.

A throughput row makes the pool (WORKERS workers), runs a warm-up pass of N/10 jobs, then
the measured pass of N: every job submitted, then every future's result taken in the
order of submission, the indexes checked. It prints `RESULT <nanoseconds>` of that pass.

`periodic` runs futurist's `PeriodicWorker` (its defaults: the `last_started` strategy,
runs on a synchronous executor in the worker's thread) with one job every 10 ms for N
seconds, and prints `STARTS <ns>,<ns>,...`: each run's start (`time.monotonic_ns()`, read
first thing in the job) after the clock read just before the worker was made (futurist
computes its first due time when the worker is made).
"""

import concurrent.futures as cf
import sys
import threading
import time

SPIN_NS = 10_000
PERIOD_S = 0.01


def empty(i):
    return i


def spin(i):
    end = time.perf_counter_ns() + SPIN_NS
    while time.perf_counter_ns() < end:
        pass
    return i


def one_pass(pool, job, n):
    began = time.perf_counter_ns()
    futures = [pool.submit(job, i) for i in range(n)]
    total = 0
    for f in futures:
        total += f.result()
    took = time.perf_counter_ns() - began
    if total != n * (n - 1) // 2:
        raise SystemExit(f'results sum to {total}, expected {n * (n - 1) // 2}')
    return took


def throughput(row, peer, n, workers):
    if peer == 'cf-threads':
        pool = cf.ThreadPoolExecutor(max_workers=workers)
    elif peer == 'futurist':
        import futurist
        pool = futurist.ThreadPoolExecutor(max_workers=workers)
    elif peer == 'cf-processes':
        pool = cf.ProcessPoolExecutor(max_workers=workers)
    else:
        raise SystemExit(f'unknown peer {peer}')
    job = spin if row == 'spin' else empty
    one_pass(pool, job, max(n // 10, 1))
    took = one_pass(pool, job, n)
    pool.shutdown(wait=True)
    print(f'RESULT {took}', flush=True)


def periodic(seconds):
    from futurist import periodics

    starts = []

    @periodics.periodic(PERIOD_S)
    def tick():
        starts.append(time.monotonic_ns())

    t0 = time.monotonic_ns()
    worker = periodics.PeriodicWorker([(tick, (), {})])
    runner = threading.Thread(target=worker.start, daemon=True)
    runner.start()
    time.sleep(seconds)
    worker.stop()
    worker.wait()
    runner.join()
    print('STARTS ' + ','.join(str(s - t0) for s in starts), flush=True)


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    row, peer, n, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if row == 'periodic':
        if peer != 'futurist-periodics':
            raise SystemExit(f'unknown periodic peer {peer}')
        periodic(n)
    else:
        throughput(row, peer, n, workers)


if __name__ == '__main__':
    main()
