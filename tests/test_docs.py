"""The commands in README.md and docs/**/*.md do what they say.

* Every ``tfpilot ...`` line of a shell block parses: its sub-command, options and values
  exist, and a ``train`` / ``lr-find`` line's config and ``--set`` overrides validate.
* The README's tour of the CLI runs, line by line as written, on tiny data: the only
  substitutions are the built-in datasets (MNIST -> a tiny folder of "digits" 0-9, IMDB
  -> a tiny CSV) and the epochs; its files (``digit.png``, ``more_digits/``, ``new.csv``...)
  are made in a scratch folder that stands for the working directory.
* The README's "fails before any work starts" example prints what the README shows, and
  the names its Python API section uses exist.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tfpilot.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").rglob("*.md"))]
SHELL = ("", "bash", "sh", "shell", "console")
FENCE = re.compile(r"^\s*```\s*([\w-]*)\s*$")

runner = CliRunner()


def fenced_blocks(path: Path) -> list[tuple[str, int, list[str]]]:
    """``(language, first line number, lines)`` of every fenced code block of a Markdown file."""
    blocks, current = [], None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = FENCE.match(line)
        if m and current is None:
            current = (m.group(1), number + 1, [])
        elif line.strip() == "```" and current is not None:
            blocks.append(current)
            current = None
        elif current is not None:
            current[2].append(line)
    return blocks


def shell_commands(path: Path) -> list[tuple[str, list[str]]]:
    """``("FILE:LINE", argv after "tfpilot")`` of every ``tfpilot`` command in a shell block
    (``$ `` prompts and ``\\`` continuations handled, comments dropped)."""
    out = []
    for lang, first, lines in fenced_blocks(path):
        if lang not in SHELL:
            continue
        pending, where = "", ""
        for i, line in enumerate(lines):
            text = line.strip()
            text = text[2:] if text.startswith("$ ") else text
            if not pending and not text.startswith("tfpilot ") or "→" in text:
                continue
            where = where or f"{path.relative_to(ROOT)}:{first + i}"
            if text.endswith("\\"):
                pending += text[:-1] + " "
                continue
            argv = shlex.split(pending + text, comments=True)
            out.append((where, argv[1:]))
            pending, where = "", ""
    return out


DOC_COMMANDS = [c for path in DOCS for c in shell_commands(path)]


def test_the_docs_were_read():
    where = {w.split(":")[0] for w, _ in DOC_COMMANDS}
    assert {"README.md", "docs/export.md", "docs/serving.md", "docs/techniques/resume.md"} <= where
    assert len(DOC_COMMANDS) >= 40


def synopsis(argv: list[str]) -> list[str]:
    """A usage line as arguments: ``[--json]`` -> ``--json``; ``RUN|ARTIFACT`` -> ``RUN``."""
    out, optional = [], False
    for a in argv:
        if a.startswith("["):
            a, optional = a[1:], True
        if optional and a.endswith("]"):
            a, optional = a[:-1], False
        out.append(a.split("|")[0] if "|" in a and not a.startswith("-") else a)
    return out


@pytest.mark.parametrize("where, argv", DOC_COMMANDS, ids=[w for w, _ in DOC_COMMANDS])
def test_every_documented_command_parses(where, argv):
    """The sub-command and every option exist and take the values shown; a train or lr-find
    line's config file and overrides validate (what the command checks before any work)."""
    from tfpilot.config import ConfigError, load_config

    group = typer.main.get_command(app)
    name, *args = synopsis(argv)
    assert name in group.commands, f"{where}: no command {name!r}"
    command = group.commands[name]
    ctx = command.make_context(name, list(args))  # raises on an unknown option or a bad value
    if name == "launch" and not ctx.params["resume"]:  # what follows launch's options is a train line
        name, ctx = "train", group.commands["train"].make_context("train", list(ctx.args))
    if name in ("train", "lr-find"):
        p = ctx.params
        config = p.get("config")
        if config is not None:
            assert (ROOT / config).is_file(), f"{where}: {config} does not exist"
        kwargs = {k: p.get(k) for k in ("dataset", "model", "epochs", "batch_size", "run_dir", "data_dir")}
        overrides = p.get("set_") or []
        if overrides == ["train.optimizer.learnig_rate=0.1"]:  # the README's example of a config error
            with pytest.raises(ConfigError, match="learnig_rate: unknown key. Did you mean 'learning_rate'"):
                load_config(ROOT / config, overrides=overrides, **kwargs)
            return
        load_config(ROOT / config if config else None, overrides=overrides, **kwargs)


def test_the_documented_config_error_is_what_users_see():
    blocks = [lines for lang, _, lines in fenced_blocks(README) if lines and lines[0].startswith("$ tfpilot train")]
    assert len(blocks) == 1
    command, *shown = blocks[0]
    argv = shlex.split(command[2:].replace("configs/", f"{ROOT}/configs/"))[1:]
    res = runner.invoke(app, argv)
    assert res.exit_code == 2
    printed = res.output.splitlines()
    assert len(printed) >= len(shown)
    for want, got in zip(shown, printed):
        assert got.startswith(want.rstrip(".").rstrip()), (want, got)  # "..." elides the rest of a line


def test_the_python_api_names_exist():
    """Every ``from X import Y`` and ``tfpilot.NAME`` of the README's Python blocks resolves."""
    import importlib

    import tfpilot

    code = "\n".join("\n".join(lines) for lang, _, lines in fenced_blocks(README) if lang == "python")
    tree = ast.parse(code.replace("...", "pass"))
    checked = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module.startswith("tfpilot"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module}.{alias.name}"
                checked += 1
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "tfpilot":
            assert hasattr(tfpilot, node.attr), f"tfpilot.{node.attr}"
            checked += 1
    assert checked >= 15


# -- the README's tour of the CLI, run on tiny data ---------------------------------------------
def tour_commands() -> list[str]:
    """The lines of the README block under "A quick tour of the CLI", continuations joined."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## A quick tour of the CLI", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


DIGITS = [str(d) for d in range(10)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A working directory with what the tour's lines name: configs/, digit.png, more_digits/,
    path/to/images/, reviews.txt, new.csv; and tiny stand-ins for MNIST and IMDB."""
    from tfpilot.testing import make_image_folder
    from tfpilot.testing.text import make_text_corpus, write_text_table

    ws = tmp_path_factory.mktemp("readme")
    (ws / "configs").symlink_to(ROOT / "configs")
    digits = make_image_folder(ws / "tiny_mnist", classes=DIGITS, per_class=40, size=28, channels=1)
    make_image_folder(ws / "path" / "to" / "images", per_class=8, size=20)
    more = make_image_folder(ws / "more_digits", classes=DIGITS[:2], per_class=2, size=28, channels=1, seed=5)
    (ws / "digit.png").write_bytes(next((digits / "7").glob("*.png")).read_bytes())
    texts, labels = make_text_corpus(80, seed=3)
    write_text_table(ws / "tiny_imdb.csv", texts, labels)
    (ws / "reviews.txt").write_text("A superb film, the best!\nDull and boring, awful.\n")
    write_text_table(ws / "new.csv", ["loved it, brilliant", "the worst plot"], ["?", "?"], text_column="review")
    return ws, sorted(more.rglob("*.png"))


def substitute(argv: list[str], ws: Path) -> list[str]:
    """Tiny data and a few epochs instead of MNIST/IMDB and full training. runs/fast, which
    the later lines export and verify, trains long enough to be confident (else its int8
    artifact could flip a prediction and fail the 1-point gate by chance). ``benchmark`` times
    20 calls a format, not 200 (its 220 calls of ``model.predict`` alone took 20 s of the tour)."""
    argv = list(argv)
    if argv[0] == "benchmark":
        return [*argv, "--runs", "20", "--warmup", "2"]
    if argv[0] != "train":
        return argv
    epochs = "12" if "runs/fast" in argv else "2"
    if "--epochs" in argv:
        argv[argv.index("--epochs") + 1] = epochs
    else:
        argv += ["--epochs", epochs]
    config = argv[1] if len(argv) > 1 and argv[1].endswith(".yaml") else ""
    if "imdb" in config:
        argv += ["--dataset", str(ws / "tiny_imdb.csv")]
    elif "mnist" in config:
        argv += ["--dataset", str(ws / "tiny_mnist")]
    return argv


def test_the_readme_tour_runs_as_written(workspace, monkeypatch):
    import tfpilot

    ws, more_digits = workspace
    monkeypatch.chdir(ws)
    lines = tour_commands()
    assert len(lines) >= 18
    outputs: dict[str, str] = {}
    for line in lines:
        argv = shlex.split(line, comments=True)
        assert argv[0] == "tfpilot", line
        if argv[1] == "serve":  # a server runs until stopped: tests/serving/ runs it
            typer.main.get_command(app).commands["serve"].make_context("serve", argv[2:])
            continue
        res = runner.invoke(app, substitute(argv[1:], ws))
        assert res.exit_code == 0, f"{line}\n{res.output}"
        outputs[" ".join(argv[1:3])] = res.output

    # what the comments and the text around the block promise
    fast = ws / "runs" / "fast"
    for name in ("config.yaml", "model.keras", "labels.json", "split.json", "history.csv", "metrics.json",
                 "data_report.json", "env.json", "report.html"):
        assert (fast / name).is_file(), name
    assert (fast / "backup").is_dir() and (fast / "plots").is_dir() and (fast / "logs").is_dir()
    assert not (fast / "checkpoints").exists()  # mnist_fast.yaml turns the best-model checkpoint off
    cnn = list((ws / "runs").glob("mnist_cnn-*"))  # configs/mnist_cnn.yaml's default run directory
    assert len(cnn) == 1 and (cnn[0] / "checkpoints" / "best.keras").is_file() and (cnn[0] / "logs").is_dir()
    assert "mnist_cnn" in outputs["models"] and "fashion_mnist" in outputs["datasets"]
    rows = json.loads(outputs["predict runs/fast"])
    assert [r["input"] for r in rows] == ["digit.png", *map(str, (p.relative_to(ws) for p in more_digits))]
    assert all(len(r["top_k"]) == 3 and r["label"] in DIGITS for r in rows)
    evaluated = {p.name for p in (fast / "evaluations").glob("*.json")}
    assert "test.json" in evaluated and any(n.startswith("digits") for n in evaluated), evaluated
    assert {"saved_model", "tflite", "tflite-fp16", "tflite-dynamic", "tflite-int8", "onnx", "keras"} <= {
        p.name for p in (fast / "export").iterdir() if p.is_dir()}
    assert (ws / "cams").is_dir() and list((ws / "cams").glob("*.png"))
    assert (ws / "runs" / "fast-pruned50" / "model.keras").is_file()
    for format_ in ("keras model.predict", "tflite-int8", "onnx"):
        assert format_ in outputs["benchmark runs/fast"], format_
    text_rows = outputs["predict runs/imdb"]
    assert "A wonderful film" in text_rows and "new.csv:2" in text_rows and "reviews.txt:1" in text_rows
    assert tfpilot.load(fast / "export" / "tflite-int8").class_names == DIGITS

    # the Python API section, on the same run
    import numpy as np
    from PIL import Image

    from tfpilot.export import verify

    image = np.asarray(Image.open(ws / "digit.png"))
    got = tfpilot.load(fast).predict(["digit.png", image, Image.open(ws / "digit.png")], top_k=3)
    assert [set(r) for r in got] == [{"label", "score", "top_k"}] * 3 and len({r["label"] for r in got}) == 1
    saved = json.loads((fast / "evaluations" / "test.json").read_text())  # written by `tfpilot evaluate`
    assert tfpilot.evaluate(fast)["macro_f1"] == pytest.approx(saved["macro_f1"])
    assert tfpilot.report(fast) == fast / "report.html"
    assert verify(fast).passed
    onnx = tfpilot.load(fast / "export" / "onnx").predict(["digit.png"])
    assert onnx[0]["label"] == got[0]["label"]


def test_demo_writes_the_report_and_prints_its_path_and_next_steps(tmp_path, monkeypatch):
    """``make demo`` runs ``tfpilot demo``: digits when MNIST is not found (here: one epoch)."""
    from tfpilot.cli import demo

    real = demo.demo_config
    monkeypatch.setattr("tfpilot.data.paths.find_data_file", lambda *a, **k: None)
    monkeypatch.setattr(demo, "_keras_download_mnist", lambda: False)

    def one_epoch(run_dir):
        cfg, what = real(run_dir)
        assert cfg.data.dataset == "digits"
        cfg.train.epochs = 1
        return cfg, what

    monkeypatch.setattr(demo, "demo_config", one_epoch)
    run_dir = tmp_path / "a-long-enough-folder-name" / "demo-run"
    res = runner.invoke(app, ["demo", "--run-dir", str(run_dir)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    report = [line for line in lines if line.startswith("report: ")]
    assert report == [f"report: {run_dir / 'report.html'} (open it in a browser)"]
    assert (run_dir / "report.html").is_file() and "<html" in (run_dir / "report.html").read_text()[:500].lower()
    assert f"run directory: {run_dir}" in lines
    accuracy = json.loads((run_dir / "metrics.json").read_text())["test"]["accuracy"]
    assert f"test accuracy: {accuracy:.4f}" in lines
    steps = lines[lines.index("next, try:") + 1:]
    assert steps[:4] == [f"  tfpilot evaluate {run_dir}", f"  tfpilot predict {run_dir} IMAGE.png",
                         f"  tfpilot export {run_dir} --format all", f"  tfpilot serve {run_dir}"]
    evaluated = runner.invoke(app, shlex.split(steps[0])[1:] + ["--json"])  # the first one works as printed
    assert evaluated.exit_code == 0 and json.loads(evaluated.output)["accuracy"] == pytest.approx(accuracy)
