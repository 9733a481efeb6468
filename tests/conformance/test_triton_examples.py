"""Triton's own Python example clients, unchanged, against a real ``tfpilot serve``.

Each client (``triton_examples/``, copied from triton-inference-server/client) runs as a
subprocess with ``-u`` pointing at the server, as its README runs it against Triton. The
health/metadata clients check that the server is named ``triton``; that check, and only it,
fails: the unchanged client stops there, and the same client with that one name replaced by
``tfpilot`` runs to its end.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent / "triton_examples"
#: Client -> the line it prints last when every check passed (None: it prints none).
PASSING = {
    "simple_http_infer_client": None,
    "simple_grpc_infer_client": "PASS: infer",
    "simple_http_async_infer_client": None,
    "simple_grpc_async_infer_client": "PASS: Async infer",
    "simple_http_string_infer_client": "PASS: string",
    "simple_grpc_string_infer_client": "PASS: string",
}
NAMED = ("simple_http_health_metadata", "simple_grpc_health_metadata")


def url(server, client: str) -> str:
    return f"127.0.0.1:{server.grpc_port if '_grpc_' in client else server.port}"


#: Seconds every client together may take (each alone takes about 2 on an idle machine).
CLIENTS_TIMEOUT = 240


def run_all(server, scripts: dict[str, Path]) -> dict[str, subprocess.CompletedProcess]:
    """Run every script at once (each waits mostly on the server) and collect their results; a
    client still running after :data:`CLIENTS_TIMEOUT` s is killed and fails its own test with
    what it printed and the tail of the server's access log and stderr."""
    procs = {name: subprocess.Popen([sys.executable, str(path), "-u", url(server, name)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, path in scripts.items()}
    deadline = time.monotonic() + CLIENTS_TIMEOUT
    out = {}
    for name, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            server_tail = server.stdout_path.read_text(errors="replace")[-2000:] + server.stderr()[-2000:]
            stderr += f"\n[killed after {CLIENTS_TIMEOUT} s; the server's logs end:]\n{server_tail}"
        out[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return out


@pytest.fixture(scope="module")
def results(triton_server,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess]:
    renamed = tmp_path_factory.mktemp("renamed")
    scripts = {name: EXAMPLES / f"{name}.py" for name in (*PASSING, *NAMED)}
    for name in NAMED:
        text = (EXAMPLES / f"{name}.py").read_text()
        assert text.count('== "triton"') == 1
        (renamed / f"{name}.py").write_text(text.replace('== "triton"', '== "tfpilot"'))
        scripts[f"{name}[tfpilot]"] = renamed / f"{name}.py"
    return run_all(triton_server, scripts)


@pytest.mark.parametrize("client", list(PASSING))
def test_example_client_passes_unchanged(results, client: str) -> None:
    result = results[client]
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "FAILED" not in result.stdout and "error" not in result.stdout.lower().replace(
        "request for unknown model", "")
    if PASSING[client] is not None:
        assert result.stdout.strip().splitlines()[-1] == PASSING[client]


@pytest.mark.parametrize("client", NAMED)
def test_health_metadata_fails_only_on_the_server_name(results, client: str) -> None:
    unchanged = results[client]
    assert unchanged.returncode != 0
    assert unchanged.stdout.strip() == "FAILED : get_server_metadata"
    renamed = results[f"{client}[tfpilot]"]
    assert renamed.returncode == 0, renamed.stdout[-2000:] + renamed.stderr[-2000:]
    assert "FAILED" not in renamed.stdout
    assert "'name': 'tfpilot'" in renamed.stdout or 'name: "tfpilot"' in renamed.stdout  # got there
