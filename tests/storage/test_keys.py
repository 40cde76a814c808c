"""Names of stored things once: every attribute archsearch writes or reads is a constant of storage/keys.py.

The check reads the package's source: a string literal passed as the name to `set_user_attr`,
`set_system_attr` (or the storage's `set_trial_*`/`set_study_*` forms), used as a key of the dict given to
`set_user_attrs`, or read from `user_attrs[...]`, `system_attrs[...]`, their `.get(...)` or an `in` test,
is a stored name spelled twice, and fails the suite.
"""

from __future__ import annotations

import ast
from pathlib import Path

from archsearch.spaces import NetSpec
from archsearch.storage import keys

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_FOLDERS = ("search", "spaces", "trainers", "storage", "dashboards", "stats")
SETTERS = {"set_user_attr", "set_system_attr"}
STORAGE_SETTERS = {"set_trial_user_attr", "set_trial_system_attr", "set_study_user_attr", "set_study_system_attr"}
ATTRIBUTE_DICTS = {"user_attrs", "system_attrs"}


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _on_attribute_dict(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr in ATTRIBUTE_DICTS


def literal_keys(source: str) -> list[tuple[int, str]]:
    """(line, name) of every stored attribute named by a string literal in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        name = None
        if isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name)):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if called in SETTERS and node.args:
                name = _literal(node.args[0])
            elif called in STORAGE_SETTERS and len(node.args) > 1:
                name = _literal(node.args[1])
            elif called == "set_user_attrs" and len(node.args) > 1 and isinstance(node.args[1], ast.Dict):
                name = next(filter(None, map(_literal, node.args[1].keys)), None)
            elif called in ("get", "pop", "setdefault") and _on_attribute_dict(node.func.value) and node.args:
                name = _literal(node.args[0])
        elif isinstance(node, ast.Subscript) and _on_attribute_dict(node.value):
            name = _literal(node.slice)
        elif isinstance(node, ast.Compare) and isinstance(node.ops[0], (ast.In, ast.NotIn)):
            if _on_attribute_dict(node.comparators[0]):
                name = _literal(node.left)
        if name is not None:
            found.append((node.lineno, name))
    return found


def test_no_stored_name_is_spelled_as_a_literal_in_the_package() -> None:
    """Check that the package names every stored attribute through storage/keys.py."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {name!r}"
        for folder in PACKAGE_FOLDERS
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != ROOT / "storage" / "keys.py"
        for line, name in literal_keys(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_literal_finder_sees_every_form() -> None:
    """Check that the check can fail: each way of naming an attribute by a literal is found, constants are not."""
    source = "\n".join(
        [
            "trial.set_user_attr('widths', [8])",
            "trial.set_system_attr('note', 1)",
            "storage.set_trial_user_attr(trial_id, 'fail_reason', 'x')",
            "set_user_attrs(trial, {'device': 'cpu', keys.SEED: 0})",
            "trial.user_attrs['n_params']",
            "frozen.system_attrs.get('failed_trial')",
            "'epochs_run' in trial.user_attrs",
            "trial.set_user_attr(keys.WIDTHS, [8])",
            "trial.user_attrs[keys.N_PARAMS]",
            "config['train']",
        ]
    )
    names = [name for _, name in literal_keys(source)]
    assert names == ["widths", "note", "fail_reason", "device", "n_params", "failed_trial", "epochs_run"]


def test_netspec_fields_are_the_stored_architecture_keys() -> None:
    """Check that NetSpec's fields, stored under their own names, are constants of storage/keys.py."""
    fields = set(NetSpec((8,), (0.0,), "relu", normalization="batch", embedding="pl").to_dict())
    assert fields == {
        keys.WIDTHS,
        keys.DROPOUTS,
        keys.ACTIVATION,
        keys.NORMALIZATION,
        keys.EMBEDDING,
        keys.EMBEDDING_DIM,
    }
