"""What the CLI prints in a narrow terminal (or a CI log): lines with paths and errors are
never wrapped, tables never hide a value behind "…", and no TensorFlow stack text leaks."""

from __future__ import annotations

import io

import pytest
import typer
from rich.console import Console
from rich.table import Table

from tfpilot.cli import common
from tfpilot.errors import UnknownNameError, UserError

LONG = "/tmp/a-rather-long-folder-name/with [brackets]/and-more/runs/mnist_cnn-mnist-20260101-120000"


@pytest.fixture
def narrow(monkeypatch):
    """Both consoles 40 columns wide, writing to buffers: (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(common, "console", Console(file=out, width=40))
    monkeypatch.setattr(common, "err_console", Console(file=err, width=40, stderr=True))
    return out, err


def test_say_prints_one_unwrapped_line_and_no_markup(narrow):
    out, _ = narrow
    common.say("run directory: ", (LONG, "bold"))
    assert out.getvalue() == f"run directory: {LONG}\n"


def test_user_errors_are_one_line_without_tensorflow_internals(narrow):
    _, err = narrow

    @common.user_errors
    def fails() -> None:
        raise UserError(f"{LONG}/x.png: {{{{function_node __wrapped__DecodeImage_device_/job:localhost/replica:0/"
                         "task:0/device:CPU:0}} Input is empty. [Op:DecodeImage] name: ")

    with pytest.raises(typer.Exit) as exit_:
        fails()
    assert exit_.value.exit_code == 2
    assert err.getvalue() == f"error: {LONG}/x.png: Input is empty\n"


def test_a_key_error_prints_its_message_not_its_repr(narrow):
    _, err = narrow

    @common.user_errors
    def fails() -> None:
        raise UnknownNameError("unknown dataset 'mnits'. Did you mean 'mnist'?")

    with pytest.raises(typer.Exit):
        fails()
    assert err.getvalue() == "error: unknown dataset 'mnits'. Did you mean 'mnist'?\n"


def test_a_table_too_wide_for_the_terminal_keeps_every_value(narrow):
    out, _ = narrow
    table = Table(title="verify")
    table.add_column("format", no_wrap=True, min_width=14)
    for col in ("top-1 agree", "accuracy", "change (points)", "max prob diff", "size", "result"):
        table.add_column(col)
    table.add_row("tflite-int8", "33.33%", "0.3333", "-66.67", "0.9876", "30 KB", "FAIL")
    common.print_table(table)
    text = out.getvalue()
    assert "…" not in text
    for value in ("tflite-int8", "33.33%", "-66.67", "0.9876", "30 KB", "FAIL", "max prob diff"):
        assert value in text
    assert common.console.width == 40  # restored


def test_a_table_that_fits_wraps_inside_the_terminal(narrow):
    out, _ = narrow
    table = Table()
    table.add_column("model", no_wrap=True)
    table.add_column("description")
    table.add_row("mnist_cnn", "Seed 004's MNIST CNN: 3 conv layers, Dense 128, dropout (130,890 params).")
    common.print_table(table)
    lines = out.getvalue().splitlines()
    assert max(map(len, lines)) <= 40 and any("mnist_cnn" in line for line in lines)
    assert "…" not in out.getvalue()


def test_a_no_wrap_column_is_never_cut(narrow):
    """Paths and labels sit in no_wrap columns: a narrow terminal must not cut them to "…"."""
    out, _ = narrow
    table = Table()
    table.add_column("input", no_wrap=True)
    table.add_column("prediction", no_wrap=True)
    table.add_column("top 3")
    table.add_row("A wonderful, superb film: the best I loved!", "pos (0.997)", "pos 0.997, neg 0.003")
    common.print_table(table)
    text = out.getvalue()
    assert "…" not in text and "A wonderful, superb film: the best I loved!" in text and "pos (0.997)" in text
