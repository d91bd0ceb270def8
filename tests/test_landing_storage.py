"""The landing zone on real storage faults: a full disk (tmpfs) and S3 (moto's server)."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import select

from emugen.db.models import BatchRow, LandingFailure
from emugen.db.session import read_session
from emugen.fleet.broker import free_port
from emugen.pipeline.runner import run_pipeline
from emugen.sinks import filesystem
from emugen.sinks.audit import verify
from emugen.sinks.lander import landing_health
from emugen.sinks.relander import reland_missing
from tests.conftest import make_settings


def statuses(engine) -> set[str]:
    with read_session(engine) as session:
        return set(session.scalars(select(BatchRow.status)))


def failures(engine) -> list[str]:
    with read_session(engine) as session:
        return list(session.scalars(select(LandingFailure.error)))


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs: root only (skips without it locally, fails when CI is set)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but a tmpfs cannot be mounted: {done.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_a_landing_error_and_the_batch_is_landed_once_space_is_freed(
    engine, tiny_disk
):
    filler = tiny_disk / "filler"
    with open(filler, "wb") as handle, pytest.raises(OSError):
        handle.write(b"\0" * 1024 * 1024)  # fill the disk to the last block
    settings = make_settings(landing={"root": str(tiny_disk / "zone")})
    run_pipeline(engine, settings, 1)

    assert statuses(engine) == {"gold"}  # the batches went on to silver and gold
    errors = failures(engine)
    assert len(errors) == 2 and "No space left on device" in errors[0]
    assert "free space there" in errors[0] and str(tiny_disk / "zone") in errors[0]
    leftovers = [p for p in tiny_disk.rglob("*") if p.is_file() and p != filler]
    assert leftovers == []  # no partial file, not even a temporary

    filler.unlink()
    assert len(reland_missing(engine, settings.landing, timedelta(0))) == 2
    assert failures(engine) == [] and verify(engine, settings.landing).ok


@pytest.fixture
def s3(monkeypatch):
    """moto's S3-compatible server on a free loopback port: a stand-in for a real bucket."""
    from moto.server import ThreadedMotoServer

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"landing-{port}"  # moto keeps buckets across servers in one process
    filesystem.open_zone(f"s3://{bucket}", {"endpoint_url": endpoint}).fs.mkdir(bucket)
    yield endpoint, bucket
    server.stop()


# a refusing endpoint should fail in about a second, not after botocore's ~9 s of retries
FAST_FAIL = {"config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2}}


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_batches_land_in_s3_with_one_put_each_and_read_back_verified(engine, s3, fmt):
    endpoint, bucket = s3
    settings = make_settings(
        landing={
            "root": f"s3://{bucket}/zone",
            "format": fmt,
            "storage_options": {"endpoint_url": endpoint},
        }
    )
    run_pipeline(engine, settings, 2)
    zone = filesystem.open_zone(settings.landing.root, settings.landing.storage_options)
    zone.fs.invalidate_cache()
    keys = sorted(zone.fs.find(f"{bucket}/zone"))
    data = [k for k in keys if not k.startswith(f"{bucket}/zone/_manifests/")]
    assert len(data) == 4 and all(k.endswith(f".{fmt}") for k in data)
    assert len(keys) == 8  # one manifest per batch, and no temporary object anywhere
    assert verify(engine, settings.landing).ok


def test_a_refusing_s3_endpoint_is_recorded_and_the_batch_relands_when_it_answers(
    engine, monkeypatch
):
    from moto.server import ThreadedMotoServer

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    port = free_port()
    endpoint, bucket = f"http://127.0.0.1:{port}", f"refused-{port}"
    settings = make_settings(
        landing={
            "root": f"s3://{bucket}/zone",
            "storage_options": {"endpoint_url": endpoint, **FAST_FAIL},
        }
    )
    run_pipeline(engine, settings, 1)  # nothing listens on the port yet

    assert statuses(engine) == {"gold"}
    errors = failures(engine)
    assert len(errors) == 2 and f"s3://{bucket}/zone" in errors[0]
    assert "Could not connect" in errors[0] and "landing.root" in errors[0]
    with read_session(engine) as session:
        assert landing_health(session)["failing_batches"] == 2

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        filesystem.open_zone(settings.landing.root, settings.landing.storage_options).fs.mkdir(
            bucket
        )
        assert len(reland_missing(engine, settings.landing, timedelta(0))) == 2
        assert failures(engine) == [] and verify(engine, settings.landing).ok
    finally:
        server.stop()
