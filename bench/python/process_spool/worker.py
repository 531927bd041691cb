"""One worker process of the layer-cake process spool: a loadable library answering `Xy`.

The server's `ProcessObject` runs this script as a child (`python worker.py` with
layer-cake's library arguments); the child publishes its top object to the parent,
which then forwards requests to it. Bound with `entry_point=[Xy]`, which is what makes
`ProcessObject` treat it as a library rather than a one-shot command.
"""

import layer_cake as lc

from texture import Table, Xy, first_seed, texture


def worker(self):
    """Answers each `Xy` with a table until stopped."""
    seed = first_seed()
    while True:
        m = self.input()
        if isinstance(m, Xy):
            rows, seed = texture(m.x, m.y, seed)
            self.send(lc.cast_to(rows, Table), self.return_address)
        elif isinstance(m, lc.Stop):
            return lc.Aborted()


lc.bind(worker, entry_point=[Xy])


if __name__ == '__main__':
    lc.create(worker)
