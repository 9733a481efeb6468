"""What the CLI prints for an error: the user's mistakes as one ``error:`` line (exit status 2),
tfpilot's or a library's bugs with their traceback (exit status 1), and user errors with their
traceback too under ``tfpilot --debug`` or ``TFPILOT_DEBUG=1``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from tfpilot.cli.common import DEBUG_ENV
from tfpilot.cli.main import app
from tfpilot.config.schema import Config
from tfpilot.errors import AlreadyExistsError, NotFoundError, UnknownNameError, UserError

runner = CliRunner()
TRACEBACK = "Traceback (most recent call last)"


def report_raises(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """``tfpilot report RUN`` runs into ``exc`` inside the Python API it calls."""

    def report(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr("tfpilot.evaluation.report.report", report)
    monkeypatch.delenv(DEBUG_ENV, raising=False)


def invalid_config() -> ValidationError:
    try:
        Config.model_validate({"train": {"epochs": "three"}})
    except ValidationError as exc:
        return exc
    raise AssertionError("the schema took epochs: three")


@pytest.mark.parametrize(("exc", "line"), [
    (UserError("--split must be test, val or train, not 'tset'"), "--split must be test, val or train, not 'tset'"),
    (NotFoundError("runs/x has no model.keras: train it first"), "runs/x has no model.keras: train it first"),
    (AlreadyExistsError("out already holds a finished run"), "out already holds a finished run"),
    (UnknownNameError("no head 'prise'. Did you mean 'price'?"), "no head 'prise'. Did you mean 'price'?"),
    (invalid_config(), "train.epochs: Input should be a valid integer, unable to parse string as an integer"),
])
def test_a_user_error_is_one_line_with_exit_status_2(monkeypatch, exc, line):
    report_raises(monkeypatch, exc)
    res = runner.invoke(app, ["report", "runs/x"])
    assert res.exit_code == 2, res.output
    assert res.output.splitlines() == [f"error: {line}"]


@pytest.mark.parametrize("bug", [
    ValueError("operands could not be broadcast together with shapes (3,) (4,)"),
    KeyError("dense_1"),
    FileNotFoundError(2, "No such file or directory", "/tmp/tfpilot-cache/entry.npy"),
    FileExistsError("/tmp/tfpilot-cache/entry"),
    TypeError("'NoneType' object is not subscriptable"),
])
def test_a_bug_prints_its_traceback_with_exit_status_1(monkeypatch, bug):
    """A ValueError or KeyError from Keras, NumPy or tfpilot itself is no mistake of the user's."""
    report_raises(monkeypatch, bug)
    res = runner.invoke(app, ["report", "runs/x"])
    assert res.exit_code == 1, res.output
    assert TRACEBACK in res.output and "in report_command" in res.output
    assert f"{type(bug).__name__}: {bug}" in res.output
    assert not any(line.startswith("error:") for line in res.output.splitlines())
    assert res.output.splitlines()[-1].startswith(f"internal error: {type(bug).__name__} (the traceback above)")


@pytest.mark.parametrize(("args", "env"), [
    (["--debug", "report", "runs/x"], {}),
    (["report", "runs/x"], {DEBUG_ENV: "1"}),
])
def test_debug_shows_the_traceback_of_a_user_error(monkeypatch, args, env):
    report_raises(monkeypatch, NotFoundError("runs/x has no model.keras: train it first"))
    res = runner.invoke(app, args, env=env)
    assert res.exit_code == 2, res.output
    assert TRACEBACK in res.output and "tfpilot.errors.NotFoundError: runs/x has no model.keras" in res.output
    assert res.output.splitlines()[-1] == "error: runs/x has no model.keras: train it first"


def test_debug_lasts_one_invocation_and_debug_0_is_off(monkeypatch):
    report_raises(monkeypatch, UserError("bad"))
    assert TRACEBACK in runner.invoke(app, ["--debug", "report", "runs/x"]).output
    assert runner.invoke(app, ["report", "runs/x"]).output == "error: bad\n"
    assert runner.invoke(app, ["report", "runs/x"], env={DEBUG_ENV: "0"}).output == "error: bad\n"


def test_a_real_user_error_of_the_api_is_one_line(tmp_path):
    """Not patched: a run directory that is not one, as tfpilot's own code reports it."""
    res = runner.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2, res.output
    assert len(res.output.splitlines()) == 1 and "not a finished tfpilot run" in res.output
