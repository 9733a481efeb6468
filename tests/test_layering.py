"""The package's import structure: one direction of imports, no circles (docs/architecture.md).

Every ``import``/``from ... import`` in ``src/tfpilot`` is read with ``ast`` (imports inside
functions too, since a lazy import is still a dependency) and mapped to the layer of the
module it names.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "tfpilot"

#: Layers from the bottom up; a module may import its own layer's modules and lower layers only.
LAYERS: list[set[str]] = [
    {"errors", "spec", "registry", "builtin_names", "plugins", "plotting", "metrics", "testing"},
    {"config", "runs"},
    {"models", "data"},
    {"training"},
    {"export"},
    {"inference"},
    {"evaluation"},
    {"serving"},
    {"api"},
    {"cli"},
]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}
#: What each leaf package may import of tfpilot (besides itself).
LEAVES = {"config": {"errors", "spec", "registry", "plugins"}, "runs": {"errors", "spec", "registry", "plugins"}}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every tfpilot module that ``path`` imports (absolute names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "tfpilot")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "tfpilot":
                continue
            for alias in node.names:  # `from tfpilot import runs` imports the module tfpilot.runs
                sub = f"{base}.{alias.name}"
                out.add(sub if _exists(sub) else base)
    return out


def _exists(module: str) -> bool:
    p = SRC.parent.joinpath(*module.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


GRAPH = {_module_name(p): _imports(p) for p in SRC.rglob("*.py")}


def test_the_graph_was_read():
    assert "tfpilot.training.trainer" in GRAPH
    assert "tfpilot.runs" in GRAPH["tfpilot.training.trainer"]
    assert "tfpilot.export.formats" in GRAPH["tfpilot.export.backends"]
    assert set(LEVEL) >= {_top(m) for m in GRAPH if _top(m)}, "a new top-level package needs a layer"


def test_imports_run_down_the_layers():
    wrong = []
    for module, deps in GRAPH.items():
        me = _top(module)
        for dep in deps:
            them = _top(dep)
            if me and them and me != them and LEVEL[them] > LEVEL[me]:
                wrong.append(f"{module} -> {dep}")
    assert not wrong, "imports against the layering (docs/architecture.md):\n" + "\n".join(sorted(wrong))


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaves_import_only_errors_spec_and_registry(leaf):
    wrong = sorted(f"{m} -> {d}" for m, deps in GRAPH.items() if _top(m) == leaf
                   for d in deps if _top(d) not in ({leaf} | LEAVES[leaf]))
    assert not wrong, f"{leaf}/ must be a leaf:\n" + "\n".join(wrong)


#: Validates a typical config that names only built-ins: a table model with a text encoder and a
#: loss with parameters, a schedule with its keys, and a zoo classifier with model parameters.
_VALIDATE_BUILTINS = """
import sys
from tfpilot.config import load_config
load_config({"data": {"dataset": "auto_mpg"},
             "features": {"inputs": [{"name": "notes", "type": "text", "encoder": {"model": "ngram_mlp"}}],
                          "outputs": [{"name": "mpg", "type": "number", "loss": "huber",
                                       "loss_params": {"delta": 2.0}}]},
             "train": {"schedule": {"name": "cosine", "min_lr_ratio": 0.1}, "optimizer": {"name": "sgd"}}})
load_config(None, overrides=["model.params.filters=[8, 16]", "train.fine_tune.enabled=false"], model="fast_cnn")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")
               or m.startswith(("tfpilot.models", "tfpilot.training")))
print(heavy[:5])
"""


def test_validating_a_config_of_built_in_names_imports_no_tensorflow():
    """config/ is a leaf at run time too: the registries know their built-in names (and what a
    config needs of them) without importing the modules that define them."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC.parent), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", _VALIDATE_BUILTINS], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"validating a config imported: {out.stdout}"


def test_only_the_api_layer_imports_training():
    wrong = sorted(f"{m} -> {d}" for m, deps in GRAPH.items() for d in deps
                   if _top(d) == "training" and _top(m) not in ("training", "api"))
    assert not wrong, "\n".join(wrong)


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_circle():
    """No module reaches itself through imports. A package's ``__init__`` handing on its own
    submodules' names is not counted as an edge back into the package."""
    edges = {m: {d for d in deps if d in GRAPH and not d.startswith(m + ".")} for m, deps in GRAPH.items()}
    cycles = find_cycles(edges)
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_circle_finder_finds_circles():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(edges) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


#: The stages that serve every model over one contract of named inputs and heads (tfpilot.spec).
ONE_PATH_STAGES = ("training", "export", "inference", "evaluation", "serving")


@pytest.mark.parametrize("stage", ONE_PATH_STAGES)
def test_a_stage_has_no_table_twin_and_reads_the_one_contract(stage):
    """One path for every model (docs/architecture.md): only data/ may keep table readers; each
    later stage reads the named-input/named-head contract of ``tfpilot.spec`` (serving through the
    one ``Predictor``)."""
    modules = [m for m in GRAPH if _top(m) == stage]
    assert modules, stage
    twins = sorted(m for m in modules if m.rsplit(".", 1)[-1].startswith("table_"))
    assert not twins, f"{stage}/ has table twins: {twins}"
    contract = {"tfpilot.spec", "tfpilot.inference.predictor"}  # serving reads it through the Predictor
    assert any(GRAPH[m] & contract for m in modules), f"{stage}/ never reads tfpilot.spec"
