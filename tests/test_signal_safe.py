"""What a signal handler sets must take no lock: the handler runs on the main thread, perhaps while that
thread is inside the same object's method holding its lock, and then waits for itself forever. A background
desk hung that way (a worker's wake signal landing inside ``threading.Event.set`` in ``Desk.stop``), its data
dir locked and its workers running. Each case lands the signal at the worst moment: right after a C call
(a lock's acquire) returns inside the object's own method (an object whose set() makes no C call holds no
lock to land in)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from conftest import REPO, batchdesk_env, scaled

LAND_INSIDE = textwrap.dedent("""
    import importlib, signal, sys
    module, _, name = sys.argv[1].partition(":")
    args = tuple(sys.argv[2:])
    target = getattr(importlib.import_module(module), name)()
    signal.signal(signal.SIGUSR2, lambda signum, frame: target.set(*args))
    landed = []

    def profile(frame, event, arg):
        # After a C call returns inside the object's set() (or a method it calls): the handler runs next.
        if event == "c_return" and not landed and frame.f_code.co_name in ("set", "__enter__", "write"):
            landed.append(frame.f_code.co_name)
            signal.raise_signal(signal.SIGUSR2)

    sys.setprofile(profile)
    target.set(*args)
    sys.setprofile(None)
    print("returned; the signal landed in", landed[0] if landed else "nothing")
""")


def land_a_signal_inside_set(target: str, *args: str) -> subprocess.CompletedProcess | None:
    """Run the script on ``target``; None if it hung (killed after the deadline)."""
    try:
        return subprocess.run([sys.executable, "-c", LAND_INSIDE, target, *args], cwd=REPO, env=batchdesk_env(),
                              capture_output=True, text=True, timeout=scaled(5))
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.parametrize(("target", "args"), [
    ("batchdesk.desk.wakeup:Wakeup", ()),  # the desk's wake-up and a background desk's stop request
    ("workers.runner:_Interrupt", ("handed back",)),  # a work-horse's hand-back request
])
def test_setting_from_a_signal_that_lands_inside_set_returns(target, args):
    result = land_a_signal_inside_set(target, *args)
    assert result is not None, f"{target}.set() deadlocked when a signal's handler set it meanwhile"
    assert result.returncode == 0 and "returned" in result.stdout, result.stderr


def test_the_harness_catches_a_lock_taken_in_a_signal_handler():
    """The control: threading.Event, which the desk used, deadlocks here (so the cases above can fail)."""
    assert land_a_signal_inside_set("threading:Event") is None


def test_the_desk_waits_on_a_signal_safe_wake_up(settings):
    from batchdesk.desk.desk import Desk
    from batchdesk.desk.wakeup import Wakeup

    assert isinstance(Desk(settings)._wake, Wakeup)
