"""The texture service on layer-cake with workers found by name: the Python peer of
strata's `server_10`.

Written on layer-cake's documented publish/subscribe API, as its own demo
(`multihosting/test_server_10.py`) does: the server subscribes to
`texture:worker:[0-9]+` at host scope and owns an `ObjectSpool(None)` that starts with
no workers; every `Available` becomes a `JoinSpool` of the publisher's address, every
`Dropped` a `LeaveSpool`. Each request goes to the spool through a `GetResponse` and is
answered from an `on_return` callback, like `texture_spool.py` and
`process_spool/server.py`. The workers (`worker.py`) are started on their own, in any
order; the names meet in the host directory, `host-cake`, which must run: on 127.0.0.1
at `--connect-to-directory` (every program of the benchmark is given the same address).

Started by strata's benchmark harness (`bench/run --bench directory`); by hand, with
the virtual environment `bench/run` prepares:

    bench/target/pyenv/bin/host-cake --directory-at-host='{"host": "127.0.0.1", "port": 54299}' &
    bench/target/pyenv/bin/python bench/python/named_spool/server.py --port=5207 \\
        --connect-to-directory='{"host": "127.0.0.1", "port": 54299}' &
    bench/target/pyenv/bin/python bench/python/named_spool/worker.py \\
        --connect-to-directory='{"host": "127.0.0.1", "port": 54299}' &   # as many as you like

It prints `workers N` each time the spool gains or loses one (the harness waits for
`workers 8`). Every address is on 127.0.0.1.
"""

import os
import sys

import layer_cake as lc

# `Xy` and the table live in the process spool's module (layer-cake names message types
# after their module, so server and workers must import the same one).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'process_spool'))
from texture import Xy  # noqa: E402

QUEUE = 64
WORKERS = r'texture:worker:[0-9]+'


def answered(self, value, kv):
    """The worker's answer (or a fault) goes back to the HTTP client."""
    self.send(lc.cast_to(value, self.returned_type), kv.return_address)


def server(self, port: int = 5207):
    """Listens for HTTP, subscribes to the workers' names, feeds the spool with them."""
    lc.listen(self, lc.HostPort('127.0.0.1', port), http_server=(Xy,))
    m, i = self.select(lc.Listening, lc.NotListening, lc.Stop)
    if i == 1:
        return m
    if i == 2:
        return lc.Aborted()

    lc.subscribe(self, WORKERS)
    m, i = self.select(lc.Subscribed, lc.NotSubscribed, lc.Stop)
    if i == 1:
        return m
    if i == 2:
        return lc.Aborted()

    spool = self.create(lc.ObjectSpool, None, size_of_queue=QUEUE)
    print(f'named spool listening on http://127.0.0.1:{port}/Xy?x=2&y=2', flush=True)

    workers = 0
    while True:
        m = self.input()
        if isinstance(m, Xy):
            r = self.create(lc.GetResponse, m, spool)
            self.on_return(r, answered, return_address=self.return_address)
        elif isinstance(m, lc.Returned):
            d = self.debrief()
            if isinstance(d, lc.OnReturned):
                d(self, m)
        elif isinstance(m, lc.Available):
            self.send(lc.JoinSpool(m.publisher_address), spool)
            workers += 1
            print(f'workers {workers}', flush=True)
        elif isinstance(m, lc.Dropped):
            self.send(lc.LeaveSpool(m.remote_address), spool)
            workers -= 1
            print(f'workers {workers}', flush=True)
        elif isinstance(m, lc.Stop):
            return lc.Aborted()


lc.bind(server)


if __name__ == '__main__':
    lc.create(server)
