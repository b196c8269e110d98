"""The benchmarks' code paths at tiny sizes, so `make bench` cannot rot. No timing is asserted:
each figure only has to come out, computed from real runs that did what they claim."""

from __future__ import annotations

import os
import shutil

import pytest

from bench import decision, http_load, policy_scale, search, trail_scale, tree, verify
from bench.__main__ import main

PG_URL = os.environ.get("GOVERN_TEST_DATABASE_URL")


def test_health_is_a_public_json_route(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200 and response.get_json() == {"ok": True}


def test_decision_figure(tmp_path):
    fig = decision.run(
        tmp_path,
        small_items=10,
        big_items=60,
        big_grants=20,
        big_vendors=3,
        reps=8,
        rounds=2,
        casbin_rows=(10,),
    )
    assert fig.ratio > 0 and fig.raw["decisions_per_size"] == 8 and fig.raw["big_vendors"] == 3
    assert fig.raw["plain_casbin_ms_10_rows"] > 0


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_http_figure_serves_and_audits_every_read(tmp_path):
    backends = ("sqlite", "postgresql") if PG_URL else ("sqlite",)
    fig = http_load.run(tmp_path, duration=1, rounds=1, workers=1, backends=backends, pg_url=PG_URL)
    assert fig.raw["bare"]["rps_median"] > 0 and fig.raw["bare"]["errors"] == 0
    for store in backends:
        figures = fig.raw[store]
        assert figures["reads_served"] > 0 and figures["errors"] == 0
        # Requests still in flight when wrk stops are served and audited after it counted.
        assert figures["reads_in_trail"] >= figures["reads_served"]
        assert figures["p99_ms"] >= figures["p50_ms"] > 0
        # The same read through Flask, served by a second server on the same instance.
        routed = fig.raw[http_load.ROUTED + store]
        assert routed["rps_median"] > 0 and routed["errors"] == 0 and routed["direct_gain"] > 0


@pytest.mark.skipif(
    not PG_URL or shutil.which("wrk") is None,
    reason="needs PostgreSQL and wrk (apt-get install wrk)",
)
def test_trail_figure_puts_every_read_of_every_master_in_the_trail(tmp_path):
    configs = ("queue_w2", "queue_2x4", "locked_w2")
    fig = trail_scale.run(
        tmp_path,
        pg_url=PG_URL,
        duration=1,
        rounds=1,
        connections=4,
        configs=configs,
        direct_processes=(2,),
        direct_seconds=0.5,
    )
    assert fig.raw["direct_appends_per_s"]["queue_p2"] > 0
    assert fig.raw["direct_appends_per_s"]["locked_p2"] > 0
    for name in configs:
        assert fig.raw[name]["errors"] == 0 and fig.raw[name]["rps"] != "invalid"
    assert fig.raw["queue_2x4"]["masters"] == 2
    # Requests still in flight when wrk stops are served and audited after it counted.
    assert fig.raw["reads_in_trail"] >= fig.raw["reads_served"] > 0
    assert fig.raw["left_queued"] == 0 and fig.raw["trail_verifies"] is True
    assert fig.raw["ratios"]["queue_w2/locked_w2"] > 0


def test_policy_figure_times_the_first_request_after_each_change(tmp_path):
    backends = ("sqlite", "postgresql") if PG_URL else ("sqlite",)
    fig = policy_scale.run(
        tmp_path,
        accounts=200,
        agreements=20,
        rounds=1,
        steady=5,
        contrast_accounts=50,
        backends=backends,
        pg_url=PG_URL,
    )
    for store in backends:
        # One new account, one rule added and taken away: each change's first request timed.
        assert fig.raw[store]["changes"] == 3
        assert fig.raw[store]["new_account_first_ms"] > 0 and fig.raw[store]["steady_ms"] > 0


def test_verify_figure_on_a_generated_chain_with_checkpoints(tmp_path):
    fig = verify.run(tmp_path, entries=2500, rounds=1, cli=True)
    assert fig.ratio > 0 and fig.raw["cli_wall_s"] > 0


def test_search_figure(tmp_path):
    backends = ("sqlite", "postgresql") if PG_URL else ("sqlite",)
    fig = search.run(tmp_path, entries=3000, searches=6, backends=backends, pg_url=PG_URL)
    for backend in backends:
        assert fig.raw[backend]["searches"] == 6
        assert fig.raw[backend]["searches_with_results"] > 0


def test_append_figure_appends_a_trail_that_verifies(tmp_path):
    backends = ("sqlite", "postgresql") if PG_URL else ("sqlite",)
    fig = tree.run_append(tmp_path, appends=10, rounds=2, backends=backends, pg_url=PG_URL)
    for backend in backends:
        # 20 warm-up and 2 x 10 measured appends of 2 entries each.
        assert fig.raw[backend]["verified_entries"] == 80 and fig.raw[backend]["ratio"] > 0


def test_proof_figure_checks_its_proofs(tmp_path):
    backends = ("sqlite", "postgresql") if PG_URL else ("sqlite",)
    fig = tree.run_proofs(tmp_path, entries=3000, samples=20, backends=backends, pg_url=PG_URL)
    for backend in backends:
        assert fig.raw[backend]["checked_against_signed_roots"] == 2
        assert fig.raw[backend]["inclusion_p50_ms"] > 0


def test_command_line_runs_one_figure(tmp_path, capsys):
    out = tmp_path / "figures.json"
    assert main(["--quick", "--only", "3", "--json", str(out)]) == 0
    assert "3. audit verify" in capsys.readouterr().out and out.exists()
