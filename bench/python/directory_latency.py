"""publish -> `Available` in the Python layer-cake system: one program, two roles, for
strata's directory benchmark (`bench/run --bench directory`, `src/directory/python.rs`).

- `--role=subscribe`: subscribes to `bench:lat:.*` at host scope and prints
  `subscribed`, then `available NAME T` and `dropped NAME T` for each session, T being
  `time.monotonic_ns()` (CLOCK_MONOTONIC, the clock strata's side uses) read first thing.
- `--role=publish`: publishes `--count` names one after the other at host scope, each
  `bench:lat:<tag><i>:<T0>` with T0 read just before `lc.publish`, waits for its
  `Published`, then sleeps `--pause` seconds (so that every process goes idle between
  publications, and one span never overlaps the next), then prints `done`.

Both find each other through `host-cake` at `--connect-to-directory`. A publisher
publishes at most a few hundred names: layer-cake gives every published name a
listening port of its own, and one `select` loop per process serves at most 1,024
descriptors, so the harness uses a fresh publisher for every batch.

    bench/target/pyenv/bin/host-cake --directory-at-host='{"host": "127.0.0.1", "port": 54299}' &
    bench/target/pyenv/bin/python bench/python/directory_latency.py --role=subscribe \\
        --connect-to-directory='{"host": "127.0.0.1", "port": 54299}' &
    bench/target/pyenv/bin/python bench/python/directory_latency.py --role=publish --count=10 \\
        --connect-to-directory='{"host": "127.0.0.1", "port": 54299}'
"""

import time

import layer_cake as lc


def say(line):
    print(line, flush=True)


def subscriber(self):
    lc.subscribe(self, r'bench:lat:.*')
    m, i = self.select(lc.Subscribed, lc.NotSubscribed, lc.Stop)
    if i != 0:
        return m if i == 1 else lc.Aborted()
    say('subscribed')
    while True:
        m = self.input()
        t = time.monotonic_ns()
        if isinstance(m, lc.Available):
            say(f'available {m.name} {t}')
        elif isinstance(m, lc.Dropped):
            say(f'dropped {m.name} {t}')
        elif isinstance(m, lc.Stop):
            return lc.Aborted()


def publisher(self, count, tag, pause):
    for i in range(count):
        t0 = time.monotonic_ns()
        lc.publish(self, f'bench:lat:{tag}{i}:{t0}')
        while True:
            # The subscriber's session comes as `Delivered`, in any order with this.
            m = self.input()
            if isinstance(m, lc.Published):
                break
            if isinstance(m, lc.NotPublished):
                say(f'error {m.note}')
                return m
            if isinstance(m, lc.Stop):
                return lc.Aborted()
        time.sleep(pause)
    say('done')
    # Stay until stopped: the names go when the process does.
    while not isinstance(self.input(), lc.Stop):
        pass
    return lc.Aborted()


def main(self, role: str = 'subscribe', count: int = 200, tag: str = '', pause: float = 0.03):
    if role == 'publish':
        return publisher(self, count, tag, pause)
    return subscriber(self)


lc.bind(main)


if __name__ == '__main__':
    lc.create(main)
