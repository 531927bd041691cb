#!/usr/bin/env python3
"""Issue 18's bench rows, in one run: the composite's start to its first answer (strata's
`strata run` of server_10 and 8 worker_10, against layer-cake's `layer-cake run` of its
named spool: the server and 8 workers), and the time from `kill -9` of a worker to its
replacement serving.

    bench/composite/run.py [--rounds 5]

Builds the release `strata`, `server_10` and `worker_10` first (cargo, one job). The
layer-cake rows use the virtual environment `bench/run` prepares (bench/target/pyenv with
seven-layer-cake 1.0.10); without it they say why they were not measured. Every run gets a
fresh home in a fresh folder and its own STRATA_RUNTIME_DIR, listens on 127.0.0.1 only,
and is stopped (`strata stop`, or SIGTERM then SIGKILL of the process group) before the
next. Times are wall clock from just before the command is started (or the kill is sent)
to the first HTTP 200 of `GET /Xy?x=2&y=2`, polled every millisecond on a fresh
connection.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELEASE = os.path.join(ROOT, 'target', 'release')
PYENV = os.path.join(ROOT, 'bench', 'target', 'pyenv')
NAMED = os.path.join(ROOT, 'bench', 'python', 'named_spool')
LIMIT = 30.0


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# Requests taken (the connection accepted, the request written) but not answered within
# 2 s: counted, and printed under the table (each one adds 2 s to its round).
UNANSWERED = {'count': 0}


def answer(port):
    """The status of one GET on a fresh connection, or None."""
    try:
        s = socket.create_connection(('127.0.0.1', port), timeout=2)
    except OSError:
        return None
    with s:
        try:
            s.sendall(b'GET /Xy?x=2&y=2 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n')
            head = s.recv(64)
        except socket.timeout:
            UNANSWERED['count'] += 1
            return None
        except OSError:
            return None
        try:
            return int(head[9:12]) if head.startswith(b'HTTP/1.1') else None
        except ValueError:
            return None


def first_200(port, since):
    while time.monotonic() - since < LIMIT:
        if answer(port) == 200:
            return time.monotonic() - since
        time.sleep(0.001)
    raise RuntimeError(f'no answer on port {port} within {LIMIT} s')


def strata(home, *args, env=None):
    return subprocess.run([os.path.join(RELEASE, 'strata'), '--home', home, *args],
                          env=env, check=True, capture_output=True, text=True).stdout


def strata_composite(rounds):
    starts, replaced = [], []
    for _ in range(rounds):
        folder = tempfile.mkdtemp(prefix='strata-bench-composite-')
        env = dict(os.environ, STRATA_RUNTIME_DIR=os.path.join(folder, 'runtime'))
        home = os.path.join(folder, '.strata')
        port = free_port()
        strata(home, 'create', env=env)
        strata(home, 'add', os.path.join(RELEASE, 'examples', 'server_10'), 'server', '--',
               f'127.0.0.1:{port}', env=env)
        strata(home, 'add', os.path.join(RELEASE, 'examples', 'worker_10'), 'worker',
               '--count', '8', env=env)
        strata(home, 'update', 'worker', '--restart-first=10ms', env=env)
        since = time.monotonic()
        run = subprocess.Popen([os.path.join(RELEASE, 'strata'), '--home', home, 'run'],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            starts.append(first_200(port, since))
            # Wait until all 8 workers run, then kill one and time its replacement: with the
            # other 7 serving, requests keep being answered meanwhile; the replacement is
            # "serving" when the status shows its new pid and it answers a request of its
            # own (a worker's pid is in its publication, so poll until it took one).
            status_path = os.path.join(home, 'run', 'status.json')
            deadline = time.monotonic() + LIMIT
            while True:
                status = json.load(open(status_path))
                running = {k: w for k, w in status['workers'].items()
                           if w['state'] == 'running' and w.get('pid')}
                if len(running) == 9:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError('8 workers did not start')
                time.sleep(0.01)
            victim = running['worker-3']['pid']
            since = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            replaced.append(replacement_serving(home, port, victim, since))
        finally:
            strata(home, 'stop', env=env)
            run.wait(timeout=LIMIT)
            shutil.rmtree(folder, ignore_errors=True)
    return starts, replaced


def replacement_serving(home, port, victim, since):
    """From the kill to the replacement's first answer: its pid appears in the status,
    and then the server's spool sends it a request (seen in the worker role's log)."""
    status_path = os.path.join(home, 'run', 'status.json')
    logs = os.path.join(home, 'roles', 'worker', 'logs')
    while time.monotonic() - since < LIMIT:
        w = json.load(open(status_path))['workers'].get('worker-3', {})
        if w.get('pid') and w['pid'] != victim and w['state'] == 'running':
            break
        time.sleep(0.001)
    new = w['pid']
    # The replacement prints `worker_10 published texture:worker:<pid>` when its name is
    # in the directory; from then on the spool may send it work. Keep asking until a
    # request is answered after that line was written.
    needle = f'published texture:worker:{new}'
    while time.monotonic() - since < LIMIT:
        text = ''.join(open(os.path.join(logs, f)).read() for f in sorted(os.listdir(logs)))
        if needle in text and answer(port) == 200:
            return time.monotonic() - since
        time.sleep(0.001)
    raise RuntimeError('the replacement did not serve')


def layer_cake_composite(rounds):
    """Gives the start-to-first-answer spans and a note on the rounds that failed (their
    output is kept in bench/target/composite-lc-*.out)."""
    lc = os.path.join(PYENV, 'bin', 'layer-cake')
    if not os.path.exists(lc):
        return [], f'no {lc}: run bench/run once to prepare the environment'
    starts, failed = [], []
    for i in range(rounds):
        folder = tempfile.mkdtemp(prefix='lc-bench-composite-')
        home = os.path.join(folder, '.layer-cake')
        port = free_port()
        env = dict(os.environ, PATH=os.path.join(PYENV, 'bin') + ':' + os.environ['PATH'])
        kept = os.path.join(ROOT, 'bench', 'target', f'composite-lc-{i}.out')
        try:
            for cmd in (['create', f'--home-path={home}'],
                        ['add', os.path.join(NAMED, 'server.py'), 'server', f'--port={port}',
                         f'--home-path={home}'],
                        ['add', os.path.join(NAMED, 'worker.py'), 'worker', '--role-count=8',
                         f'--home-path={home}']):
                r = subprocess.run([lc, *cmd], env=env, capture_output=True, text=True,
                                   cwd=folder)
                if r.returncode != 0:
                    return starts, f'layer-cake {cmd[0]}: {r.stderr.strip() or r.stdout.strip()}'
            since = time.monotonic()
            with open(kept, 'w') as out:
                run = subprocess.Popen([lc, 'run', f'--home-path={home}'], env=env,
                                       cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            try:
                starts.append(first_200(port, since))
                os.remove(kept)
            except RuntimeError as e:
                failed.append(f'round {i + 1}: {e} (output in {kept})')
            finally:
                os.killpg(run.pid, signal.SIGTERM)
                try:
                    run.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(run.pid, signal.SIGKILL)
                    run.wait()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return starts, '; '.join(failed) or None


def row(name, values):
    ms = [v * 1000 for v in values]
    return (f'| {name} | {statistics.median(ms):.0f} | {min(ms):.0f} | {max(ms):.0f} | '
            f'{len(ms)} |')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=5)
    args = parser.parse_args()
    subprocess.run(['cargo', 'build', '--release', '--quiet', '-p', 'strata-cli', '--bin',
                    'strata', '--example', 'server_10', '--example', 'worker_10'],
                   cwd=ROOT, check=True, env=dict(os.environ, CARGO_BUILD_JOBS='1'))
    starts, replaced = strata_composite(args.rounds)
    notes = []
    if UNANSWERED['count']:
        notes.append(f"strata: {UNANSWERED['count']} request(s) taken but not answered within "
                     "2 s (each adds 2 s to its round; see NOTES.md, \"Homes and supervision\")")
    UNANSWERED['count'] = 0
    lc_starts, why = layer_cake_composite(args.rounds)
    if UNANSWERED['count']:
        notes.append(f"layer-cake: {UNANSWERED['count']} request(s) taken but not answered "
                     "within 2 s")
    print('| composite (server + 8 workers) | median ms | min ms | max ms | runs |')
    print('|---|---|---|---|---|')
    print(row('strata run: start to first 200', starts))
    if lc_starts:
        print(row('layer-cake run: start to first 200', lc_starts))
        if why:
            notes.append(f'layer-cake rounds that never answered: {why}')
    else:
        print(f'| layer-cake run: start to first 200 | not measured: {why} | | | |')
    print(row('strata: kill -9 of a worker to its replacement serving (10 ms first retry)',
              replaced))
    for n in notes:
        print(f'\n{n}')


if __name__ == '__main__':
    sys.exit(main())
