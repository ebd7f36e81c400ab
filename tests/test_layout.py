"""The house keeps its shape: the DNI library stands alone, and imports point one way with no cycles."""
import ast
import subprocess
import sys
from pathlib import Path

from dni_repro.config import REPO_ROOT

PACKAGE = REPO_ROOT / "dni_repro"

# Which parts of the package each part may import. Anything not listed is forbidden, so a new
# back-arrow (say, models importing the config schema) fails here.
ALLOWED = {
    "dni": {"dni"},
    "names": set(),
    "errors": set(),
    "models": {"models", "dni", "names"},
    "data": {"data", "errors"},
    "runs": {"runs", "names", "errors"},
    "config": {"names", "errors"},
    "experiments": {"experiments", "execution", "models", "dni", "data", "runs", "names", "errors", "config"},
    "execution": {"execution", "errors"},
    "launch": {"config", "errors", "experiments", "runs"},
    "sweeps": {"config", "errors"},
    "reports": {"reports", "runs"},
    "czarnecki": {"czarnecki", "reports", "experiments", "models", "dni", "data", "runs", "config", "names"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The dni_repro modules that `path` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dni_repro"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("dni_repro"))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    # `from dni_repro.reports import figures` names a module; `from dni_repro.dni import DNI` names a package.
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def part_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else module


def test_every_import_points_down_the_house():
    wrong = []
    for module, targets in import_graph().items():
        for target in targets:
            if part_of(target) not in ALLOWED[part_of(module)]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, wrong


def test_there_are_no_import_cycles():
    graph = import_graph()
    # A package's __init__ re-exporting its own modules is not a cycle between ideas.
    graph = {m: {t for t in ts if not (m == t.rsplit(".", 1)[0] or t == m.rsplit(".", 1)[0])} for m, ts in graph.items()}
    visiting, done, cycles = set(), set(), []

    def visit(module, trail):
        if module in done:
            return
        if module in visiting:
            cycles.append(trail[trail.index(module):] + [module])
            return
        visiting.add(module)
        for target in graph.get(module, ()):
            visit(target, trail + [module])
        visiting.discard(module)
        done.add(module)

    for module in graph:
        visit(module, [])
    assert not cycles, cycles


BLOCKER = """
import importlib.abc, sys
BLOCKED = ("dni_repro.config", "dni_repro.models", "dni_repro.experiments", "dni_repro.runs", "hydra", "omegaconf")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith(BLOCKED):
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
import torch
import dni_repro.dni as dni
h = torch.randn(4, 8, requires_grad=True)
interface = dni.DNI(dni.MLPSyntheticGradient(activation_dim=8, hidden_layers=1, hidden_width=16))
message = interface.send(h)
z = message.activation.requires_grad_()
(z ** 2).sum().backward()
interface.receive(dni.GradientMessage(z.grad, bootstrapped=False))
print("standalone", sorted(m for m in sys.modules if m.startswith("dni_repro")))
"""


def test_dni_library_imports_and_runs_with_the_suite_and_hydra_blocked():
    result = subprocess.run([sys.executable, "-c", BLOCKER], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("standalone")
    assert all(name == "dni_repro" or name.startswith("dni_repro.dni") for name in eval(line[len("standalone "):]))
