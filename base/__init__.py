"""archsearch.base: what every package of archsearch may import, and which imports nothing of archsearch.

- `ArchsearchError`, the one base of the errors a user can fix (the CLI catches it once, see `_errors.py`);
- the checks every validation starts from (`is_int`, `is_real`, `is_finite_real`, `is_sequence`), the one
  unknown-key rule (`check_keys`) and the name a typo most likely meant (`closest`, `some` for long lists);
- `lazy_exports`, which lets a package's public names load on first use, so that `import archsearch` (and
  `archsearch.trainers`) stay light.

The dependency rules (tests/test_layout.py) let `spaces/`, `storage/` and `trainers/` import nothing else of
ours; this package is the one exception, so that a rule written once serves them all.
"""

from archsearch.base._checks import check_keys, closest, is_finite_real, is_int, is_real, is_sequence, some
from archsearch.base._errors import ArchsearchError
from archsearch.base._lazy import lazy_exports

__all__ = [
    "ArchsearchError",
    "check_keys",
    "closest",
    "is_finite_real",
    "is_int",
    "is_real",
    "is_sequence",
    "lazy_exports",
    "some",
]
