"""The API fuzzed from openapi.json by schemathesis, against the real server.

`sql-databricks-bridge serve` over both sandboxes (demo data and config, its
own instances: see `fuzz_bridge`), Colombia's token, every check schemathesis
has (`--checks all`) but one:

* `use_after_free` expects a resource to be 404 after a 2xx DELETE.
  DELETE /jobs/{job_id} cancels a job and keeps its record, in state
  `cancelled`, for its owner to read (the API documents it so): a job is
  never deleted.

Examples per operation are bounded (SCHEMATHESIS_MAX_EXAMPLES, default 50)
and the seed fixed (SCHEMATHESIS_SEED), so a run takes well under a minute
on 2 cores and a failure replays. The fixtures (schemathesis.toml) and the
hooks (schemathesis_hooks.py) say what the document cannot.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLOMBIA_TOKEN = "demo-colombia-token"

EXCLUDED_CHECKS = ["use_after_free"]


def test_every_operation_fuzzed_with_every_check(fuzz_bridge, tmp_path):
    fuzz_bridge.assert_alive()
    exe = Path(sys.executable).parent / "schemathesis"
    cmd = [
        str(exe), "--no-color",
        "--config-file", str(HERE / "schemathesis.toml"),
        "run", f"{fuzz_bridge.url}/openapi.json",
        "--checks", "all",
        "--exclude-checks", ",".join(EXCLUDED_CHECKS),
        "-H", f"Authorization: Bearer {COLOMBIA_TOKEN}",
        "--max-examples", os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "50"),
        "--seed", os.environ.get("SCHEMATHESIS_SEED", "20261130"),
        "--report", "junit", "--report-dir", str(tmp_path),
    ]
    env = dict(os.environ, SCHEMATHESIS_HOOKS=str(HERE / "schemathesis_hooks.py"))
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    print(out)  # the summary, in the test log
    fuzz_bridge.assert_alive()
    assert run.returncode == 0, f"schemathesis found problems:\n{out}\nserver log:\n{fuzz_bridge.server_log()}"
    counts = re.search(r"(\d+) generated, (\d+) passed", out)
    assert counts and counts.group(1) == counts.group(2) and int(counts.group(1)) > 0, out
