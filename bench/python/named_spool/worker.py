"""One worker of the layer-cake named spool (`server.py`): publishes itself as
`texture:worker:<pid>` at host scope and answers `Xy` with a table, until stopped.

Started on its own (not by the server), with the host directory's address:

    bench/target/pyenv/bin/python bench/python/named_spool/worker.py \\
        --connect-to-directory='{"host": "127.0.0.1", "port": 54299}'
"""

import os
import sys

import layer_cake as lc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'process_spool'))
from texture import Table, Xy, first_seed, texture  # noqa: E402,F401


def worker(self):
    """Publishes its name, then answers each `Xy` with a table."""
    lc.publish(self, f'texture:worker:{os.getpid()}')
    m, i = self.select(lc.Published, lc.NotPublished, lc.Stop)
    if i == 1:
        return m
    if i == 2:
        return lc.Aborted()
    print(f'published {m.name}', flush=True)
    seed = first_seed()
    while True:
        m = self.input()
        if isinstance(m, Xy):
            rows, seed = texture(m.x, m.y, seed)
            self.send(lc.cast_to(rows, Table), self.return_address)
        elif isinstance(m, lc.Stop):
            return lc.Aborted()


lc.bind(worker)


if __name__ == '__main__':
    lc.create(worker)
