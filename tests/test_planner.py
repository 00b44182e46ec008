"""The planner's choices and the reasons it gives."""

from __future__ import annotations

from batchdesk import defaults
from batchdesk.planner import Readings, plan_batch, plan_workers

GIB = 2**30


def test_one_worker_per_free_core():
    plan = plan_workers(Readings(cores=8, load1=0.2, ram_available=16 * GIB))
    assert plan.count == 8 and "one per core" in plan.reason


def test_foreign_load_takes_cores_but_our_own_workers_do_not():
    assert plan_workers(Readings(cores=8, load1=3.5, ram_available=16 * GIB)).count == 5
    assert plan_workers(Readings(cores=8, load1=3.5, ram_available=16 * GIB), own_busy_workers=3).count == 8


def test_free_ram_limits_workers():
    plan = plan_workers(Readings(cores=16, load1=0, ram_available=3 * defaults.WORKER_RAM_BUDGET))
    assert plan.count == 3 and "RAM" in plan.reason


def test_worker_override_is_used_even_on_a_busy_two_core_machine():
    assert plan_workers(Readings(cores=2, load1=9, ram_available=GIB), override=6).count == 6


def test_batches_sized_by_work_not_count():
    tiny = plan_batch(100_000, 4096, 2, cost_per_item=2e-5, cost_per_byte=1.5e-9)
    big = plan_batch(2_000, 2**20, 2, cost_per_item=2e-5, cost_per_byte=1.5e-9)
    assert tiny.size > 5 * big.size
    assert 0.5 <= big.size * big.seconds_per_item <= 2.0


def test_measured_times_override_the_estimate():
    plan = plan_batch(100_000, 4096, 2, cost_per_item=1.0, cost_per_byte=0, measured_seconds_per_item=0.002)
    assert plan.size == int(defaults.BATCH_TARGET_SECONDS / 0.002) and "measured" in plan.reason


def test_small_jobs_spread_over_workers():
    plan = plan_batch(10, 100, 4, cost_per_item=0.05, cost_per_byte=0)
    assert plan.size == 3 and "split" in plan.reason


def test_a_job_of_less_work_than_a_batch_start_saves_stays_one_batch():
    plan = plan_batch(5, 4096, 2, cost_per_item=2e-5, cost_per_byte=1.5e-9)  # 5 files to checksum: ~0.1 ms
    assert plan.size >= 5 and "split" not in plan.reason
    assert plan_batch(10_000, 4096, 2, cost_per_item=2e-5, cost_per_byte=1.5e-9).size == 5000, "0.26 s: shared"


def test_pressure_shrinks_batches_and_says_so():
    calm = plan_batch(100_000, 4096, 2, cost_per_item=1e-3, cost_per_byte=0)
    pressed = plan_batch(100_000, 4096, 2, cost_per_item=1e-3, cost_per_byte=0, ram_available=GIB, under_pressure=True)
    assert pressed.size == calm.size // 4 and "RAM is low" in pressed.reason
    assert pressed.max_bytes < plan_batch(100_000, 4096, 2, 1e-3, 0, ram_available=GIB).max_bytes


def test_tail_split_shrinks_batches_toward_the_end():
    from batchdesk.planner import tail_split

    sizes, uncut = [], 2000
    while uncut:
        sizes.append(tail_split(500, uncut, workers=2))
        uncut -= min(uncut, sizes[-1])
    assert sizes[0] == 500 and sizes == sorted(sizes, reverse=True)
    assert sizes[-1] == 500 // 4 and sum(sizes) >= 2000


def test_a_small_job_is_split_evenly_over_the_workers():
    from batchdesk.planner import even_split

    # 2,000 files of ~1 s/512 each, 2 workers, 6 queue slots: 4 equal batches, 2 per worker
    assert even_split(512, 2000, workers=2, slots=6) == 500
    # 100,000 small files, batches of up to 20,000: 6 batches of 16,667, 3 per worker
    assert even_split(20_000, 100_000, workers=2, slots=6) == 16_667
    assert even_split(20_000, 10, workers=2, slots=6) == 5  # tiny: one batch per worker
    assert even_split(20_000, 130_000, workers=2, slots=6) is None  # too big to queue whole: tail_split
    assert even_split(500, 0, workers=2, slots=6) is None


def test_retry_backoff_grows_with_jitter_and_a_cap():
    from batchdesk.desk.queues import Policy

    policy = Policy(retries=3, backoff=(60.0, 300.0, 600.0), timeout=10)
    for attempt, base in ((1, 60.0), (2, 300.0), (3, 600.0), (4, 600.0)):
        delays = {policy.delay(attempt) for _ in range(50)}
        assert all(base * (1 - defaults.RETRY_JITTER) <= d <= base * (1 + defaults.RETRY_JITTER) for d in delays)
        assert len(delays) > 1, "jittered, so retries of many batches do not stampede"
    assert Policy(3, (10_000.0,), 10).delay(1) <= defaults.RETRY_CAP_SECONDS


def test_failure_policy_layers_global_task_and_job(tmp_path):
    import pytest

    from batchdesk.config import Settings
    from batchdesk.jobs.submit import SubmitError, failure_policy

    settings = Settings(data_dir=tmp_path, retries=3, item_timeout=0,
                        task_policies={"command": {"retries": 1, "item_timeout": 120}})
    assert failure_policy(settings, "checksum")["retries"] == 3
    assert failure_policy(settings, "command") == {"retries": 1, "backoff": [60.0, 300.0, 600.0],
                                                   "timeout": 3600, "item_timeout": 120.0}
    assert failure_policy(settings, "command", {"retries": 5, "batch_timeout": 60})["retries"] == 5
    with pytest.raises(SubmitError, match="unknown key"):
        failure_policy(settings, "command", {"retry": 5})


def test_slow_items_round_to_the_nearest_item_count():
    plan = plan_batch(100, 100, 2, cost_per_item=0.05, cost_per_byte=0, measured_seconds_per_item=1.1)
    assert plan.size == 2, "1.1 s items: two per batch (2.2 s), not one"


def test_a_long_running_batch_makes_room_for_a_waiting_job():
    from batchdesk.planner import hand_back_for_waiting

    long = hand_back_for_waiting(pending=19, seconds_per_item=1.0, waiting="job 2")
    assert long is not None and long.keep == 1 + int(defaults.BATCH_TARGET_SECONDS)
    assert long.reason.startswith("job 2 waits for a worker; 19.0 s of work left at 1.00 s/item")
    assert hand_back_for_waiting(pending=3, seconds_per_item=1.0, waiting="job 2") is None, "ends soon anyway"
    assert hand_back_for_waiting(pending=3, seconds_per_item=30.0, waiting="job 2").keep == 1, "only the item in hand"
    assert hand_back_for_waiting(pending=1, seconds_per_item=30.0, waiting="job 2") is None, "nothing to hand back"


def test_an_idle_worker_gets_half_of_a_running_batchs_rest():
    from batchdesk.planner import hand_back_for_idle

    half = hand_back_for_idle(pending=5, seconds_per_item=1.0)
    assert half is not None and half.keep == 3 and half.reason.startswith("a worker is idle; 5.0 s of work left")
    assert hand_back_for_idle(pending=5, seconds_per_item=0.01) is None, "not worth a batch start"
    assert hand_back_for_idle(pending=1, seconds_per_item=30.0) is None, "one item cannot be shared"
