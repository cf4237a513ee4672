"""Every hook is documented in docs/plugins.md and exercised by a test."""

from pathlib import Path

import pytest

from arkrelay_core.plugins import create_plugin_manager

ROOT = Path(__file__).parents[2]
HOOKS = sorted(n for n in dir(create_plugin_manager().hook) if n.startswith("arkrelay_"))
# Listing names is not exercising them.
NOT_EXERCISE = {"test_exports.py", "test_docs.py"}


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_doc_section(hook):
    assert f"\n### {hook}\n" in (ROOT / "docs" / "plugins.md").read_text()


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test(hook):
    sources = [
        p.read_text()
        for base in ("tests", "plugins", "contract-tests")
        if (ROOT / base).exists()
        for p in (ROOT / base).rglob("test_*.py")
        if p.name not in NOT_EXERCISE
    ]
    assert any(hook in text for text in sources), f"no test mentions {hook}"
