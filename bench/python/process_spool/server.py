"""The texture service on layer-cake with a spool of worker *processes*: the Python peer
of strata's `server_8`.

An HTTP front made with `listen`, an `ObjectSpool` of 8 `ProcessObject`s each running
`worker.py` as a long-lived child (a loadable library), every request passed to the
spool through a `GetResponse` and answered from an `on_return` callback.
`GET /Xy?x=2&y=2` answers with a 2-by-2 table of floats in [0, 1).

Started by strata's benchmark harness (`bench/run --bench process`); by hand, with the
virtual environment `bench/run` prepares:

    bench/target/pyenv/bin/python bench/python/process_spool/server.py --port=5205

Arguments use layer-cake's command-line form (`--name=value`); `--port` is the only one
this service adds. Every address is on 127.0.0.1.
"""

import layer_cake as lc

from texture import Xy
import worker

WORKERS = 8
QUEUE = 64


def answered(self, value, kv):
    """The worker's answer (or a fault) goes back to the HTTP client."""
    self.send(lc.cast_to(value, self.returned_type), kv.return_address)


def server(self, port: int = 5205):
    """Listens for HTTP, owns the process spool, passes every request to it."""
    lc.listen(self, lc.HostPort('127.0.0.1', port), http_server=(Xy,))
    m, i = self.select(lc.Listening, lc.NotListening, lc.Stop)
    if i == 1:
        return m
    if i == 2:
        return lc.Aborted()

    spool = self.create(lc.ObjectSpool, lc.ProcessObject, worker.worker,
        object_count=WORKERS, size_of_queue=QUEUE)
    print(f'process spool listening on http://127.0.0.1:{port}/Xy?x=2&y=2', flush=True)

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
