"""``transcribe --dask``: a 2-worker LocalCluster equals ``--jobs 1`` byte for byte (less the
timing field), and a worker killed mid-run loses nothing and duplicates nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from int4rt.cli import main
from int4rt.errors import Int4rtError
from int4rt.executors import dask_client, map_shards
from int4rt.model.config import load_config
from int4rt.model.container import save_model
from int4rt.model.random_model import random_model

distributed = pytest.importorskip("distributed")

CONFIGS = Path(__file__).parents[1] / "configs"
FILES = 40
TIMING = re.compile(rb', "decode_seconds": [0-9.e-]+')


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """A tiny model, 40 noise files of different lengths, a manifest with references."""
    root = tmp_path_factory.mktemp("dask")
    model = root / "model.safetensors"
    save_model(random_model(load_config(CONFIGS / "tiny.json"), 0), model)
    rng = np.random.default_rng(5)
    entries = []
    for index in range(FILES):
        name = f"u{index:02d}.wav"
        sf.write(root / name, 0.3 * rng.standard_normal(2400 + 160 * index), 8000)
        entries.append({"audio": name, "text": "a tale" if index % 2 else "hello"})
    manifest = root / "m.jsonl"
    manifest.write_text("".join(json.dumps(e) + "\n" for e in entries))
    serial = root / "serial.jsonl"
    common = [str(model), "--manifest", str(manifest), "--method", "beam", "--beam", "3"]
    assert main(["transcribe", *common, "--output", str(serial)]) == 0
    return {"root": root, "common": common, "serial": serial.read_bytes()}


@pytest.fixture(scope="module")
def cluster():
    """One 2-worker LocalCluster (worker processes, one thread each) for the module."""
    local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=":0")
    client = distributed.Client(local)
    yield local, client
    client.close()
    local.close()


def _untimed(data: bytes) -> bytes:
    return TIMING.sub(b"", data)


@pytest.mark.thorough  # starts Dask worker processes: the full suite only
def test_local_cluster_equals_jobs_1(corpus, cluster, capsys):
    out, summary = corpus["root"] / "dask.jsonl", corpus["root"] / "summary.json"
    assert main(["transcribe", *corpus["common"], "--dask", cluster[0].scheduler_address,
                 "--shard-size", "3", "--output", str(out), "--summary", str(summary)]) == 0
    data = out.read_bytes()
    assert data.count(b"\n") == FILES
    assert _untimed(data) == _untimed(corpus["serial"])
    assert data != _untimed(data)  # the timing field was there, and only it was removed
    facts = json.loads(summary.read_text())
    assert (facts["items"], facts["decoded"], facts["errors"]) == (FILES, FILES, 0)
    seconds = sum(2400 + 160 * i for i in range(FILES)) / 8000
    assert facts["audio_hours"] == round(seconds / 3600, 6)
    assert "summary: 40 items (40 decoded, 0 resumed)" in capsys.readouterr().err


@pytest.mark.thorough  # starts Dask worker processes: the full suite only
def test_sweep_on_dask_equals_jobs_1(corpus, cluster, capsys):
    dev = corpus["root"] / "dev.jsonl"
    dev.write_text("".join((corpus["root"] / "m.jsonl").read_text().splitlines(True)[:8]))
    args = [corpus["common"][0], "--manifest", str(dev), "--beams", "2,3", "--shard-size", "3"]
    reports = []
    for executor in (["--jobs", "1"], ["--dask", cluster[0].scheduler_address]):
        out = corpus["root"] / f"sweep{len(reports)}.json"
        assert main(["sweep", *args, *executor, "--output", str(out)]) == 0
        reports.append(out.read_text())
    assert reports[0] == reports[1]
    assert json.loads(reports[0])["utterances"] == 8
    capsys.readouterr()


@pytest.mark.thorough  # starts Dask worker processes: the full suite only
def test_a_failed_shard_is_reported_after_the_others(cluster):
    """sorted() fails on the shard [1, "a"]: the others come back in order, then the error."""
    got = []
    shards = [[2, 1], [1, "a"], [3], [5, 4]]
    with pytest.raises(Int4rtError, match=r"1 of 4 shards failed .*shard 1: TypeError"):
        for index, result in map_shards(sorted, shards, dask=cluster[0].scheduler_address):
            got.append((index, result))
    assert got == [(0, [1, 2]), (2, [3]), (3, [4, 5])]


@pytest.mark.parametrize("address", ["local:0", "local:two", "local:"])
def test_bad_local_cluster_sizes(address):
    with pytest.raises(Int4rtError, match="expected local:N with N >= 1"), dask_client(address):
        pass


@pytest.mark.thorough  # starts Dask worker processes: the full suite only
def test_local_n_starts_and_stops_a_cluster():
    with dask_client("local:1") as client:
        assert len(client.scheduler_info()["workers"]) == 1
        assert client.submit(sum, [1, 2, 3]).result() == 6
        cluster = client.cluster
    assert cluster.status.name == "closed"


@pytest.mark.thorough  # starts Dask worker processes: the full suite only
def test_killed_worker_loses_nothing(corpus, cluster):
    """Runs last: the killed worker's nanny starts a new one, which must load the model."""
    local, client = cluster
    out = corpus["root"] / "killed.jsonl"
    killed: dict = {}

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            lines = out.read_bytes().count(b"\n") if out.exists() else 0
            busy = [w for w, keys in client.processing().items() if keys]
            if lines >= 1 and busy:
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.update(pid=pid, lines=lines)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_a_busy_worker)
    watcher.start()
    assert main(["transcribe", *corpus["common"], "--dask", local.scheduler_address,
                 "--shard-size", "1", "--output", str(out)]) == 0
    watcher.join()
    assert killed and killed["lines"] < FILES, "the worker was not killed mid-run"
    data = out.read_bytes()
    audios = [json.loads(line)["audio"] for line in data.splitlines()]
    assert sorted(audios) == sorted(set(audios)) and len(audios) == FILES
    assert _untimed(data) == _untimed(corpus["serial"])
