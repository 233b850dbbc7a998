"""The README's commands work exactly as printed (issue #27).

The test command runs, character for character, from a temporary layout ``tmp/main`` + ``tmp/shared``
like the README's (a checkout with ``../shared/data`` beside it), on one small test file that
changes folder before it reads the data directory. ``.ci/run`` reads the same README blocks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fairmerge.cli import main

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
from pathlib import Path

from fairmerge.paths import resolve_data_dir


def test_relative_data_dir_survives_chdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found = resolve_data_dir(None)
    assert found.is_absolute() and found.is_dir(), found
    assert found == Path(__file__).resolve().parents[2] / "shared" / "data"
"""


def readme_command(heading: str) -> str:
    """The one command in the ```bash block under the README heading ``## {heading}``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(heading)}.*?^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert found, f"README has no bash block under ## {heading}"
    lines = found[1].strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_ci_runs_the_readme_blocks() -> None:
    """.ci/run extracts the same two commands the README prints (its awk, run here)."""
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    function = re.search(r"^readme_command\(\) \{.*?^\}", script, re.MULTILINE | re.DOTALL)
    assert function and 'eval "$setup"' in script and 'eval "$tests"' in script
    for heading in ("Set-up", "Tests"):
        shown = subprocess.run(
            ["bash", "-c", f'{function[0]}\nreadme_command "{heading}"'],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        assert shown.stdout.strip() == readme_command(heading)


def test_readme_test_command_with_relative_data_dir(tmp_path: Path, data_dir: Path) -> None:
    command = readme_command("Tests")
    assert "FAIRMERGE_DATA_DIR=../shared/data" in command  # the relative form this test is about
    main_dir = tmp_path / "main"
    (main_dir / "tests").mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(data_dir.resolve())
    (main_dir / ".venv").symlink_to(Path(sys.prefix))
    for name in ("conftest.py", "fp32_study.py"):  # the conftest imports the second
        (main_dir / "tests" / name).write_text((ROOT / "tests" / name).read_text())
    (main_dir / "tests" / "test_probe.py").write_text(_PROBE)
    env = {k: v for k, v in os.environ.items() if k != "FAIRMERGE_DATA_DIR"}
    env["PYTHONPATH"] = str(ROOT / "src")  # this checkout's code, as the venv's editable install is another's
    result = subprocess.run(
        ["bash", "-c", f"{command} -p no:cacheprovider tests/test_probe.py"],
        cwd=main_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_csv_summary_needs_no_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``data summary csv -o path=FILE`` names its own file: no data directory, not even a bad one."""
    table = tmp_path / "posts.csv"
    table.write_text("text,label,group,split\n" + "".join(f"t{i},{i % 2},a,test\n" for i in range(8)))
    monkeypatch.setenv("FAIRMERGE_DATA_DIR", str(tmp_path / "nope"))
    monkeypatch.setattr(sys, "argv", ["fairmerge", "data", "summary", "csv", "-o", f"path={table}"])
    main()
    assert "test: n=8" in capsys.readouterr().out
    monkeypatch.delenv("FAIRMERGE_DATA_DIR")
    main()
    assert "test: n=8" in capsys.readouterr().out


def test_dataset_in_the_data_dir_names_itself_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FAIRMERGE_DATA_DIR", raising=False)
    monkeypatch.setattr(sys, "argv", ["fairmerge", "data", "summary", "hatexplain"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith("error: dataset 'hatexplain'") and "--data-dir" in err, err


def test_relative_env_data_dir_is_anchored_where_the_command_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fairmerge.paths import anchor_env_dirs

    monkeypatch.setenv("FAIRMERGE_DATA_DIR", "../shared/data")
    anchor_env_dirs(tmp_path / "main")
    assert os.environ["FAIRMERGE_DATA_DIR"] == str(tmp_path / "shared" / "data")
