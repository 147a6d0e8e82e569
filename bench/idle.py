"""How often an idle process wakes up, from /proc (bench/run.py and tokens.py)."""
import os
import time


def context_switches(pid):
    """Voluntary + involuntary context switches of every thread: each is a wake-up."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    total += int(line.split()[1])
    return total


def idle_wakeups(pid, seconds):
    """Wake-ups per minute of an agent nobody talks to."""
    before = context_switches(pid)
    time.sleep(seconds)
    return (context_switches(pid) - before) * 60.0 / seconds
