"""The texture service on layer-cake: the Python peer of strata's `server_4`.

An HTTP front made with `listen`, a spool (`ObjectSpool`) of 8 worker threads, each
request passed to the spool through a `GetResponse` object and answered from an
`on_return` callback. `GET /Xy?x=2&y=2` answers with a 2-by-2 table of random floats in
[0, 1) as JSON, made with the same xorshift generator as strata's examples.

Written for strata's benchmark harness (bench/src/http/mod.rs starts it). Run with the
virtual environment that `bench/run` prepares:

    bench/target/pyenv/bin/python bench/python/texture_spool.py --port=5203

Arguments use layer-cake's own command-line form (`--name=value`); `--port` is the only
one this service adds. Every address is on 127.0.0.1.
"""

import os
import sys

import layer_cake as lc

# The texture work (`Xy`, `Table`, the generator) is shared with the process-spool
# service, which needs it in a module of its own.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'process_spool'))
from texture import Table, Xy, first_seed, texture  # noqa: E402

WORKERS = 8


def worker(self):
    """One worker thread of the spool: answers each `Xy` with a table."""
    seed = first_seed()
    while True:
        m = self.input()
        if isinstance(m, Xy):
            table, seed = texture(m.x, m.y, seed)
            self.send(lc.cast_to(table, Table), self.return_address)
        elif isinstance(m, lc.Stop):
            return lc.Aborted()


lc.bind(worker)


def answered(self, value, kv):
    """The `on_return` callback: the worker's answer (or a fault) goes to the HTTP client."""
    self.send(lc.cast_to(value, self.returned_type), kv.return_address)


def server(self, port: int = 5203):
    """The service: listens for HTTP, owns the spool, passes every request to it."""
    lc.listen(self, lc.HostPort('127.0.0.1', port), http_server=(Xy,))
    m, i = self.select(lc.Listening, lc.NotListening, lc.Stop)
    if i == 1:
        return m
    if i == 2:
        return lc.Aborted()
    print(f'texture_spool listening on http://127.0.0.1:{port}/Xy?x=2&y=2', flush=True)

    spool = self.create(lc.ObjectSpool, worker, object_count=WORKERS, size_of_queue=64)

    while True:
        m = self.input()
        if isinstance(m, Xy):
            r = self.create(lc.GetResponse, m, spool)
            self.on_return(r, answered, return_address=self.return_address)
        elif isinstance(m, lc.Returned):
            d = self.debrief()
            if isinstance(d, lc.OnReturned):
                d(self, m)
        elif isinstance(m, lc.Stop):
            return lc.Aborted()


lc.bind(server)


if __name__ == '__main__':
    lc.create(server)
