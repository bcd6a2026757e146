"""Run `eksctl create cluster`; if this is interrupted (Ctrl-C, a hangup, Ansible ending it), delete what it began.

    create_guard.py LOG -- CREATE_ARGV... -- DELETE_ARGV...

Ctrl-C reaches ansible-playbook, which stops at once: no rescue of the play runs, while CloudFormation goes on
creating the stacks eksctl started. This guard runs CREATE_ARGV in a session of its own (the terminal's
Ctrl-C reaches the guard, not eksctl, which would stop waiting and leave the stacks to finish) and, when it
is itself told to stop (SIGINT, SIGTERM, SIGHUP), ends the creation and starts DELETE_ARGV detached from
Ansible and the terminal, its output appended to LOG, then exits 130. Otherwise it exits with the
creation's code, its output passed through.
"""

import os
import signal
import subprocess
import sys

STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(Exception):
    pass


def stop(signum, frame):
    raise Stopped


def delete_detached(argv, log):
    """DELETE_ARGV in a new session, in a grandchild nobody waits for: Ansible's end does not end it."""
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            try:
                with open(log, "ab") as out, open(os.devnull, "rb") as devnull:
                    out.write(f"compat-lab: the creation was interrupted; running {' '.join(argv)}\n".encode())
                    out.flush()
                    subprocess.run(argv, stdin=devnull, stdout=out, stderr=subprocess.STDOUT, check=False)
            finally:
                os._exit(0)
        os._exit(0)
    os.wait()


def main(args):
    try:
        log = args[0]
        first = args.index("--", 1)
        second = args.index("--", first + 1)
    except (IndexError, ValueError):
        print(__doc__, file=sys.stderr)
        return 2
    create, delete = args[first + 1:second], args[second + 1:]
    for signum in STOPS:
        signal.signal(signum, stop)
    proc = None
    try:
        proc = subprocess.Popen(create, start_new_session=True)
        return proc.wait()
    except Stopped:
        for signum in STOPS:
            signal.signal(signum, signal.SIG_IGN)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        delete_detached(delete, log)
        print(f"create_guard: interrupted; the cluster is being deleted in the background (log: {log})",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
