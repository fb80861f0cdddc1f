"""Who gets the engine's OSC messages, and how much, without sockets: registrations, budgets, JSON cut to fit."""

from __future__ import annotations

import json

import pytest
from loopbridge.bridge import protocol as p
from loopbridge.bridge.osc_routes import NOTICE_BYTES, Registrations, ReplyBudget, fit_json
from loopbridge.bridge.replies import WireError


def test_a_sender_is_routed_by_its_own_registration_only() -> None:
    routes = Registrations()
    budget = ReplyBudget()
    routes.register(("127.0.0.1", 5000), 9001)
    device = routes.sender(("127.0.0.1", 5000), budget)
    assert device.target == ("127.0.0.1", 9001) and device.registered and device.limit == p.MAX_OSC_REPLY_BYTES
    other = routes.sender(("127.0.0.1", 5001), budget)  # the same host, another socket
    assert other.target == ("127.0.0.1", 5001) and not other.registered
    assert other.limit == p.MAX_OSC_UNREGISTERED_REPLY_BYTES
    assert routes.targets() == [("127.0.0.1", 9001)]
    routes.unregister(("127.0.0.1", 6000), 9001)  # a sender with a new port can name the port
    assert routes.targets() == [] and not routes.sender(("127.0.0.1", 5000), budget).registered


def test_registrations_per_host_and_in_all() -> None:
    routes = Registrations(per_host=2, total=3)
    for port in (1, 2, 3):  # the host's third replaces its oldest
        routes.register(("10.0.0.1", port), 9000 + port)
    assert routes.targets() == [("10.0.0.1", 9002), ("10.0.0.1", 9003)]
    routes.register(("10.0.0.1", 2), 9002)  # registering again: no new place taken, now the newest
    routes.register(("10.0.0.1", 4), 9004)
    assert routes.targets() == [("10.0.0.1", 9002), ("10.0.0.1", 9004)]
    routes.register(("10.0.0.2", 1), 9001)
    with pytest.raises(WireError) as refused:
        routes.register(("10.0.0.3", 1), 9001)
    assert refused.value.code is p.ErrorCode.BUSY
    routes.register(("10.0.0.2", 1), 9005)  # a registered sender may always move its port
    assert ("10.0.0.2", 9005) in routes.targets()


def test_a_budget_stops_at_its_limit_and_says_so_once() -> None:
    budget = ReplyBudget()
    limit = 1000
    assert budget.room(limit) == limit - NOTICE_BYTES
    assert budget.admit(400, limit) == "send" and budget.admit(300, limit) == "send"
    assert budget.room(limit) == limit - NOTICE_BYTES - 700
    assert budget.admit(100, limit) == "notice"  # 800 > 744
    assert budget.admit(10, limit) == "drop" and budget.room(limit) == 0  # nothing after the notice


@pytest.mark.parametrize("max_bytes", [20, 100, 500, 2000])
def test_json_is_cut_to_fit(max_bytes: int) -> None:
    status = {"device": "cpu", "queue": {"running_jobs": [f"job-{i}" for i in range(200)], "queued": {"a": 1}},
              "resident": [{"model": f"m{i}"} for i in range(50)]}
    text = fit_json(status, max_bytes)
    assert len(text.encode()) <= max_bytes
    value = json.loads(text)
    assert value["truncated"] is True
    if max_bytes >= 500:
        assert value["device"] == "cpu" and value["queue"]["running_jobs"][:3] == ["job-0", "job-1", "job-2"]
    entries = fit_json([{"key": "a" * 60}] * 100, max_bytes)
    assert len(entries.encode()) <= max_bytes and isinstance(json.loads(entries), list)
    assert fit_json({"small": [1, 2]}, max_bytes) == '{"small":[1,2]}'
