"""Checks of quality_scale.yaml against the Integration Quality Scale.

hassfest validates this file only for core integrations, so nothing upstream
notices a rule that is missing, listed twice, or exempted without a reason.
The rule list is pinned here on purpose: a file that silently lacks a rule
reads as complete. When the scale gains a rule, add it here and to the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

QUALITY_SCALE = (
    Path(__file__).parent.parent
    / "custom_components"
    / "bambu_cloud"
    / "quality_scale.yaml"
)

# The rules of each tier, as listed by Home Assistant's developer documentation
# (developers.home-assistant.io/docs/core/integration-quality-scale/rules).
TIERS: dict[str, tuple[str, ...]] = {
    "Bronze": (
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow",
        "config-flow-test-coverage",
        "dependency-transparency",
        "docs-actions",
        "docs-conditions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "docs-triggers",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ),
    "Silver": (
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    ),
    "Gold": (
        "devices",
        "diagnostics",
        "discovery",
        "discovery-update-info",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    ),
    "Platinum": (
        "async-dependency",
        "inject-websession",
        "strict-typing",
    ),
}
ALL_RULES = [rule for rules in TIERS.values() for rule in rules]
STATUSES = {"done", "exempt", "todo"}


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys instead of keeping the last."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in keys:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        keys.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def _load(text: str) -> dict[str, Any]:
    # _StrictLoader is a SafeLoader: no arbitrary objects are constructed.
    data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506
    assert isinstance(data, dict)
    assert set(data) == {"rules"}
    rules = data["rules"]
    assert isinstance(rules, dict)
    return rules


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the conftest fixture: these checks need no Home Assistant."""


@pytest.fixture(name="rules")
def rules_fixture() -> dict[str, Any]:
    return _load(QUALITY_SCALE.read_text(encoding="utf-8"))


def _status(value: object) -> str:
    return str(value["status"]) if isinstance(value, dict) else str(value)


def test_rule_list_has_no_duplicates() -> None:
    assert len(ALL_RULES) == len(set(ALL_RULES)) == 54


def test_every_rule_appears_exactly_once(rules: dict[str, Any]) -> None:
    assert sorted(rules) == sorted(ALL_RULES)


def test_duplicate_rule_is_refused() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key"):
        _load("rules:\n  brands: done\n  brands: todo\n")


def test_rules_are_grouped_by_tier(rules: dict[str, Any]) -> None:
    """Rules follow tier order, each tier under its own comment header."""
    tier_of = {
        rule: index for index, names in enumerate(TIERS.values()) for rule in names
    }
    order = [tier_of[rule] for rule in rules]
    assert order == sorted(order)
    lines = QUALITY_SCALE.read_text(encoding="utf-8").splitlines()
    headers = [line.strip() for line in lines if line.strip().startswith("#")]
    assert headers == [f"# {tier}" for tier in TIERS]


def test_every_rule_is_met_or_exempt(rules: dict[str, Any]) -> None:
    """Platinum on paper: no rule is left to do (issue: done or exempt)."""
    assert [rule for rule, value in rules.items() if _status(value) == "todo"] == []


def test_statuses_and_comments(rules: dict[str, Any]) -> None:
    for rule, value in rules.items():
        status = _status(value)
        assert status in STATUSES, rule
        if isinstance(value, dict):
            assert set(value) == {"status", "comment"}, rule
            comment = value["comment"]
            assert isinstance(comment, str), rule
            assert comment.strip(), rule
        else:
            # A bare status cannot carry the reason exempt and todo need.
            assert status == "done", rule


def test_trigger_rule_follows_the_code(rules: dict[str, Any]) -> None:
    """With device triggers shipped, docs-triggers is done and the README has them."""
    integration = QUALITY_SCALE.parent
    has_triggers = (integration / "device_trigger.py").exists()
    assert _status(rules["docs-triggers"]) == ("done" if has_triggers else "exempt")
    readme = (integration.parent.parent / "README.md").read_text(encoding="utf-8")
    assert ("device triggers" in readme.lower()) == has_triggers
