"""The texture work shared by the process-spool service and its worker processes.

`Xy` lives here, in a module both programs import, because layer-cake names a message
type after its module: a type defined in the worker's own script would be
`__main__.Xy` in the worker and something else in the server, and the two would not
recognise each other's messages.
"""

import os
import time

import layer_cake as lc

MASK = (1 << 64) - 1


class Xy(object):
    """Ask for an x-by-y table: `GET /Xy?x=2&y=2`."""

    def __init__(self, x: int = 1, y: int = 1):
        self.x = x
        self.y = y


lc.bind(Xy)

# The answer: rows of floats, a constructed type that layer-cake must know.
Table = lc.def_type(list[list[float]])


def first_seed():
    """A seed that differs from process to process (never zero)."""
    return ((time.time_ns() ^ (os.getpid() << 16)) & MASK) or 1


def texture(x, y, seed):
    """An x-by-y table of floats in [0, 1) from xorshift64 (shifts 13, 7, 17), the
    generator of strata's examples; gives the table and the next seed."""
    rows = []
    for _ in range(y):
        row = []
        for _ in range(x):
            seed ^= (seed << 13) & MASK
            seed ^= seed >> 7
            seed ^= (seed << 17) & MASK
            row.append((seed >> 11) / float(1 << 53))
        rows.append(row)
    return rows, seed
