"""Consistency checks for the translation files.

Every language file must mirror en.json key for key and placeholder for
placeholder, and every translation key referenced by the integration's source
or by icons.json must have an English string. The checks are generic so they
guard future additions without being edited.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from homeassistant.generated.languages import LANGUAGES

from custom_components.bambu_cloud.bambu.tls import TlsBundleError
from custom_components.bambu_cloud.error_reasons import (
    BUNDLE_ERROR,
    BUNDLE_REASONS,
    CERTIFICATE_ERROR,
    CERTIFICATE_REASONS,
    NAMED_BUNDLE_REASONS,
    bundle_error,
    certificate_error_key,
)

INTEGRATION = Path(__file__).parent.parent / "custom_components" / "bambu_cloud"
TRANSLATIONS = INTEGRATION / "translations"
EN = TRANSLATIONS / "en.json"
OTHER_LANGUAGES = sorted(p for p in TRANSLATIONS.glob("*.json") if p != EN)
# The languages the integration ships, by Home Assistant's language codes
# (the file name is the code: a script or region keeps its case, pt-BR).
SHIPPED_LANGUAGES = frozenset(
    {"en", "de", "zh-Hans", "fr", "es", "it", "nl", "pl", "pt-BR", "ja", "ko"}
)

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_TRANSLATION_KEY = re.compile(
    r"""\btranslation_key\s*=\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z_]\w*))"""
)
_CONSTANT = re.compile(
    r"""^([A-Z][A-Z0-9_]*)\s*(?::[^=\n]+)?=\s*(?:"([^"]*)"|'([^']*)')\s*$""",
    re.MULTILINE,
)
# Sections of en.json that translation_key= arguments can refer to.
_KEYED_SECTIONS = ("entity", "device", "exceptions", "issues", "selector")
# Library errors whose reasons each have a translation key.
_AUTH = INTEGRATION / "bambu" / "auth.py"
_CERTIFICATE_ERROR = re.compile(r"""CertificateError\(\s*["']([a-z_]+)["']""")


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the conftest fixture: these tests need no Home Assistant."""


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as file:
        data = json.load(file)
    assert isinstance(data, dict), f"{path.name}: top level is not an object"
    return data


def _leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Yield the key path of every leaf of a nested dict."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    else:
        yield path


def _get(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = data
    for key in path:
        node = node[key]
    return node


def _placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def _source_files() -> list[Path]:
    return sorted(INTEGRATION.rglob("*.py"))


def _string_constants() -> dict[str, str]:
    """Module-level NAME = "value" constants of the integration's source."""
    constants: dict[str, str] = {}
    for source in _source_files():
        for match in _CONSTANT.finditer(source.read_text(encoding="utf-8")):
            name, double, single = match.groups()
            constants.setdefault(name, double if double is not None else single)
    return constants


def _used_translation_keys() -> dict[str, set[str]]:
    """Map each translation_key used in the source to the files using it."""
    constants = _string_constants()
    used: dict[str, set[str]] = {}
    for source in _source_files():
        text = source.read_text(encoding="utf-8")
        for double, single, name in _TRANSLATION_KEY.findall(text):
            key = double or single or constants.get(name)
            if key is None:
                # A variable (e.g. a description's translation_key) that is
                # not a module constant: the literal is found where it is set.
                continue
            used.setdefault(key, set()).add(source.name)
    return used


def _keys_under(node: Any, depth: int) -> set[str]:
    """The dict keys found exactly `depth` levels below `node`."""
    if not isinstance(node, dict):
        return set()
    if depth == 0:
        return set(node)
    keys: set[str] = set()
    for value in node.values():
        keys |= _keys_under(value, depth - 1)
    return keys


def test_english_strings_are_valid() -> None:
    en = _load(EN)
    for path in _leaves(en):
        value = _get(en, path)
        dotted = ".".join(path)
        assert isinstance(value, str), f"en.json {dotted}: not a string"
        assert value.strip(), f"en.json {dotted}: empty string"
        assert "{}" not in value, f"en.json {dotted}: unnamed placeholder"


def test_shipped_languages_exist() -> None:
    """Exactly the shipped languages have a file: none lost, none stray."""
    present = {path.stem for path in TRANSLATIONS.glob("*.json")}
    assert present == SHIPPED_LANGUAGES, (
        f"missing: {sorted(SHIPPED_LANGUAGES - present)},"
        f" unexpected: {sorted(present - SHIPPED_LANGUAGES)}"
    )


@pytest.mark.parametrize("language", sorted(SHIPPED_LANGUAGES))
def test_language_code_is_home_assistants(language: str) -> None:
    """Home Assistant loads a translation only under its exact code.

    A file named pt_BR.json or zh-hans.json would never be shown, so each
    code must be one of the frontend's languages, spelled as it spells it.
    """
    assert language in LANGUAGES, f"{language} is not a Home Assistant language"


@pytest.mark.parametrize("path", OTHER_LANGUAGES, ids=lambda path: path.name)
def test_language_matches_english(path: Path) -> None:
    en = _load(EN)
    other = _load(path)

    en_paths = set(_leaves(en))
    other_paths = set(_leaves(other))
    missing = sorted(".".join(p) for p in en_paths - other_paths)
    extra = sorted(".".join(p) for p in other_paths - en_paths)
    assert not missing, f"{path.name} misses keys: {missing}"
    assert not extra, f"{path.name} has keys en.json lacks: {extra}"

    for leaf in sorted(en_paths):
        dotted = ".".join(leaf)
        value = _get(other, leaf)
        assert isinstance(value, str), f"{path.name} {dotted}: not a string"
        assert value.strip(), f"{path.name} {dotted}: empty string"
        expected = _placeholders(_get(en, leaf))
        assert _placeholders(value) == expected, (
            f"{path.name} {dotted}: placeholders {sorted(_placeholders(value))}"
            f" differ from en.json {sorted(expected)}"
        )


def test_source_translation_keys_exist() -> None:
    en = _load(EN)
    known: set[str] = set()
    known |= _keys_under(en.get("entity", {}), 1)  # entity.<platform>.<key>
    for section in _KEYED_SECTIONS[1:]:  # device / exceptions / ... .<key>
        known |= _keys_under(en.get(section, {}), 0)

    used = _used_translation_keys()
    assert used, "no translation_key found in the source: is the regex broken?"
    unknown = {key: sorted(files) for key, files in used.items() if key not in known}
    assert not unknown, (
        f"translation keys missing from en.json {'/'.join(_KEYED_SECTIONS)}: {unknown}"
    )


def test_icon_keys_exist() -> None:
    icons_file = INTEGRATION / "icons.json"
    if not icons_file.exists():
        pytest.skip("no icons.json")
    icons = _load(icons_file)
    en_entity = _load(EN).get("entity", {})
    missing = sorted(
        f"{platform}.{key}"
        for platform, keys in icons.get("entity", {}).items()
        for key in keys
        if key not in en_entity.get(platform, {})
    )
    assert not missing, f"icons.json entity keys missing from en.json: {missing}"


def test_every_certificate_reason_is_listed() -> None:
    """Each reason bambu/auth.py raises has its own translation key."""
    raised = set(_CERTIFICATE_ERROR.findall(_AUTH.read_text(encoding="utf-8")))
    assert raised, "no CertificateError found in auth.py: is the regex broken?"
    assert raised <= CERTIFICATE_REASONS


def test_reason_keys_exist() -> None:
    """Every refusal reason has a message without English text inserted.

    The certificate reasons are shown by entry setup (exceptions) and by the
    config flow (which reports a missing certificate ID with its own key);
    the CA bundle reasons by the options flow, naming the certificate when
    the reason is about one.
    """
    en = _load(EN)
    exceptions = en["exceptions"]
    config_errors = en["config"]["error"]
    option_errors = en["options"]["error"]
    for section in (exceptions, config_errors):
        assert "reason" not in _placeholders(str(section))
    assert not _placeholders(exceptions[CERTIFICATE_ERROR]["message"])
    assert not _placeholders(config_errors[CERTIFICATE_ERROR])
    for reason in CERTIFICATE_REASONS:
        key = f"{CERTIFICATE_ERROR}_{reason}"
        assert not _placeholders(exceptions[key]["message"]), key
        if reason != "certificate_id_required":
            assert not _placeholders(config_errors[key]), key
    assert not _placeholders(option_errors[BUNDLE_ERROR])
    for reason in BUNDLE_REASONS:
        key = f"{BUNDLE_ERROR}_{reason}"
        expected = {"certificate"} if reason in NAMED_BUNDLE_REASONS else set()
        assert _placeholders(option_errors[key]) == expected, key


def test_unknown_reasons_fall_back_to_the_generic_message() -> None:
    """A reason a newer library adds still shows a translated message."""
    assert certificate_error_key("not_rsa") == "invalid_certificate_not_rsa"
    assert certificate_error_key("brand_new") == CERTIFICATE_ERROR
    assert bundle_error(TlsBundleError("not_pem")) == ("invalid_bundle_not_pem", {})
    assert bundle_error(TlsBundleError("expired", "Old CA")) == (
        "invalid_bundle_expired",
        {"certificate": "Old CA"},
    )
    # A reason about one certificate, without its name: nothing to name.
    assert bundle_error(TlsBundleError("expired")) == (BUNDLE_ERROR, {})
    unknown = TlsBundleError("not_pem")
    unknown.reason = "brand_new"  # type: ignore[assignment]
    assert bundle_error(unknown) == (BUNDLE_ERROR, {})


@pytest.mark.parametrize("section", ["config", "options"])
def test_every_flow_field_is_described(section: str) -> None:
    """Each field of a flow form has a data_description (quality scale)."""
    steps = _load(EN)[section]["step"]
    missing = {
        f"{step_id}.{field}"
        for step_id, step in steps.items()
        for field in step.get("data", {})
        if field not in step.get("data_description", {})
    }
    assert not missing
