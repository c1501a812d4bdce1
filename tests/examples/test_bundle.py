"""examples/databricks/databricks.yml is a valid bundle: known top-level
keys, every ${var.x} declared, every file it names present, and every job
accepted by Databricks' own bundle models (the `databricks-bundles` package
rejects unknown fields and wrong types)."""

import pathlib
import re
import tomllib

import yaml
from databricks.bundles.jobs import Job

BUNDLE_DIR = pathlib.Path(__file__).resolve().parents[2] / "examples" / "databricks"
TOP_LEVEL = {"bundle", "variables", "resources", "targets", "artifacts", "include", "workspace",
             "sync", "permissions", "run_as", "presets", "experimental", "scripts"}


def load():
    return yaml.safe_load((BUNDLE_DIR / "databricks.yml").read_text())


def test_top_level_and_variables():
    doc = load()
    assert set(doc) <= TOP_LEVEL, set(doc) - TOP_LEVEL
    assert doc["bundle"]["name"]
    used = set(re.findall(r"\$\{var\.([A-Za-z0-9_]+)\}", (BUNDLE_DIR / "databricks.yml").read_text()))
    assert used <= set(doc["variables"]), used - set(doc["variables"])
    for name, var in doc["variables"].items():
        assert var.get("description"), name


def test_jobs_match_the_official_models():
    jobs = load()["resources"]["jobs"]
    assert jobs
    for key, job in jobs.items():
        parsed = Job.from_dict(job)
        assert parsed.name, key
        assert parsed.tasks, key


def test_files_it_names_exist():
    doc = load()
    for job in doc["resources"]["jobs"].values():
        for task in job["tasks"]:
            if "sql_task" in task:
                assert (BUNDLE_DIR / task["sql_task"]["file"]["path"]).is_file()
            if "spark_python_task" in task:
                source = BUNDLE_DIR / task["spark_python_task"]["python_file"]
                compile(source.read_text(), str(source), "exec")
            if "python_wheel_task" in task:
                # The entry point is one of the wheel's console scripts.
                wheel = task["python_wheel_task"]
                assert wheel["package_name"] == "sql_databricks_bridge"
                scripts = tomllib.loads((BUNDLE_DIR / "../../client/python/pyproject.toml").read_text())
                assert wheel["entry_point"] in scripts["project"]["scripts"]
    for artifact in doc.get("artifacts", {}).values():
        assert (BUNDLE_DIR / artifact["path"] / "pyproject.toml").is_file()
