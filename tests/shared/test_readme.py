"""The README stays true: every setting is documented, and the Makefile has its commands."""

from pathlib import Path

from shared.platform.settings import ENV_VARS

REPO = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented():
    readme = (REPO / "README.md").read_text()
    missing = [v.env for v in ENV_VARS if f"`{v.env}`" not in readme]
    assert missing == []


def test_readme_commands_are_make_targets():
    makefile = (REPO / "Makefile").read_text()
    for target in ("setup", "run", "test", "test-fast"):
        assert f"\n{target}:" in makefile


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert "`make test`" in (REPO / "README.md").read_text()
