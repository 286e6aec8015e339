"""A small offline validator against the conformance tables written from the ANS SAS guide
1.2.0 (https://interop.esante.gouv.fr/ig/fhir/sas) in tests/fhir_conformance_tables.py and
tests/fhir_conformance_tables_cpts.py (the rules of FR Core the guide's profiles build on
included where they bear on our output).

It checks what a table states element by element: cardinalities (min/max), `fixed` and
`pattern` values, required bindings (codes inline in the tables), the slices a profile defines
(by their discriminator, by binding, or by conformance when the discriminator names no fixed
value), and the guide's `value.matches('…')` invariants (FINESS). Resources found inside (Bundle
entries, contained resources) are checked against the profiles they claim. The base FHIR model
stays checked by fhir.resources."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from tests import fhir_conformance_tables as tables
from tests.fhir_conformance_tables_cpts import PROFILES

CORE_VALUE_SETS = tables.CORE_VALUE_SETS
_MATCHES = re.compile(r"^value\.matches\('(.+)'\)$")


@dataclass
class Profile:
    url: str
    type: str
    elements: dict[str, dict[str, Any]]
    children: dict[str, dict[str, list[str]]] = field(default_factory=dict)


def _parent_and_name(element_id: str) -> tuple[str, str]:
    parent, _, last = element_id.rpartition(".")
    return parent, last


def _element(element_id: str, rule: dict[str, Any]) -> dict[str, Any]:
    """A table rule as the snapshot-like element the validator reads."""
    element: dict[str, Any] = {"id": element_id}
    for key in ("min", "max", "fixed", "pattern", "slicing"):
        if key in rule:
            element[key] = rule[key]
    if "binding" in rule:
        element["binding"] = {"strength": "required", "valueSet": rule["binding"]}
    if "profile" in rule:
        element["type"] = [{"profile": list(rule["profile"])}]
    if "matches" in rule:
        key, expression = rule["matches"]
        element["constraint"] = [{"key": key, "expression": expression}]
    return element


def _expand(table: tables.Profile) -> dict[str, dict[str, Any]]:
    """The table's rules by full element id, with every ancestor present, and each slice's
    children inheriting the rules of the sliced element's children (as a snapshot states)."""
    rules: dict[str, dict[str, Any]] = {table.type: {}}
    for path, rule in table.elements.items():
        rules[f"{table.type}.{path}"] = dict(rule)
    changed = True
    while changed:
        changed = False
        for element_id in sorted(rules, key=len):
            parent, last = _parent_and_name(element_id)
            if parent and parent not in rules:
                rules[parent] = {}
                changed = True
            if ":" not in last:
                continue
            base = f"{parent}.{last.split(':', 1)[0]}" if parent else last.split(":", 1)[0]
            for other in list(rules):
                if other.startswith(base + "."):
                    target = element_id + other[len(base) :]
                    merged = {**rules[other], **rules.get(target, {})}
                    if rules.get(target) != merged:
                        rules[target] = merged
                        changed = True
    return {element_id: _element(element_id, rule) for element_id, rule in rules.items()}


@cache
def _load() -> tuple[dict[str, Profile], dict[str, set[tuple[str, str]]]]:
    profiles: dict[str, Profile] = {}
    for table in PROFILES.values():
        elements = _expand(table)
        profile = Profile(table.url, table.type, elements)
        for element_id in elements:
            parent, last = _parent_and_name(element_id)
            if not parent:
                continue
            name = last.split(":", 1)[0]
            profile.children.setdefault(parent, {}).setdefault(name, []).append(element_id)
        profiles[table.url] = profile
    value_sets = {
        url: {(system, code) for system, codes in by_system.items() for code in codes}
        for url, by_system in tables.GUIDE_VALUE_SETS.items()
    }
    return profiles, value_sets


def known_profiles() -> set[str]:
    return set(_load()[0])


def _fixed_or_pattern(element: dict[str, Any]) -> tuple[str, Any] | None:
    for key, value in element.items():
        if key.startswith("fixed"):
            return "fixed", value
        if key.startswith("pattern"):
            return "pattern", value
    return None


def _contains(value: Any, pattern: Any) -> bool:
    """FHIR pattern semantics: every element of the pattern is in the value."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(_contains(value.get(k), v) for k, v in pattern.items())
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        return all(any(_contains(item, p) for item in items) for p in pattern)
    return bool(value == pattern)


class Validator:
    def __init__(self) -> None:
        self.profiles, self.value_sets = _load()
        self.errors: list[str] = []

    # -- bindings -------------------------------------------------------------------------
    def _codes_ok(self, valueset: str, codings: list[tuple[str | None, str]]) -> bool | None:
        url = valueset.split("|", 1)[0]
        if url in self.value_sets:
            allowed = self.value_sets[url]
            return any(
                (system, code) in allowed
                if system is not None
                else any(code == known for _, known in allowed)
                for system, code in codings
            )
        if url in CORE_VALUE_SETS:
            return any(code in CORE_VALUE_SETS[url] for _, code in codings)
        return None  # value set not available offline: not checked

    def _binding(self, value: Any, element: dict[str, Any], where: str) -> None:
        binding = element.get("binding") or {}
        if binding.get("strength") != "required" or not binding.get("valueSet"):
            return
        if isinstance(value, str):
            codings: list[tuple[Any, Any]] = [(None, value)]
        elif isinstance(value, dict) and ("coding" in value or "text" in value):
            codings = [(c.get("system"), c.get("code")) for c in value.get("coding") or []]
        elif isinstance(value, dict):
            codings = [(value.get("system"), value.get("code"))]
        else:
            return
        ok = self._codes_ok(binding["valueSet"], codings)
        if ok is False:
            self.errors.append(
                f"{where}: {codings} not in required value set {binding['valueSet']}"
            )

    # -- elements -------------------------------------------------------------------------
    def _check_value(
        self, value: Any, element: dict[str, Any], profile: Profile, where: str
    ) -> None:
        expected = _fixed_or_pattern(element)
        if expected is not None:
            kind, wanted = expected
            good = value == wanted if kind == "fixed" else _contains(value, wanted)
            if not good:
                self.errors.append(f"{where}: {value!r} does not match {kind} {wanted!r}")
        self._binding(value, element, where)
        for constraint in element.get("constraint") or []:
            match = _MATCHES.match(constraint.get("expression", ""))
            text = value.get("value") if isinstance(value, dict) else None
            if match and isinstance(text, str) and not re.search(match.group(1), text):
                key, expression = constraint["key"], constraint["expression"]
                self.errors.append(f"{where}: invariant {key} fails ({expression})")
        if isinstance(value, dict):
            self._check_node(value, element["id"], profile, where)

    def _values(self, node: dict[str, Any], name: str) -> list[tuple[str, Any]]:
        if name.endswith("[x]"):
            prefix = name[:-3]
            keys = [
                k
                for k in node
                if k.startswith(prefix) and k[len(prefix) : len(prefix) + 1].isupper()
            ]
        else:
            keys = [name] if name in node else []
        out: list[tuple[str, Any]] = []
        for key in keys:
            raw = node[key]
            for item in raw if isinstance(raw, list) else [raw]:
                out.append((key, item))
        return out

    def _errors_of(self, run: Any) -> list[str]:
        saved, self.errors = self.errors, []
        try:
            run()
            return self.errors
        finally:
            self.errors = saved

    def _in_slice(
        self, key: str, value: Any, slice_id: str, slicing: dict[str, Any], profile: Profile
    ) -> bool:
        element = profile.elements[slice_id]
        slice_name = slice_id.rsplit(":", 1)[1]
        for disc in slicing.get("discriminator") or []:
            kind, path = disc["type"], disc["path"]
            if kind == "type" and path == "$this":
                type_name = slice_name[:1].upper() + slice_name[1:]
                if key != slice_name and not key.endswith(type_name):
                    return False
                continue
            if kind == "profile":
                target: dict[str, Any] | None = profile.elements.get(f"{slice_id}.{path}") or {}
                wanted = {
                    p for t in (target or {}).get("type") or [] for p in t.get("profile") or []
                }
                sub = value.get(path) if isinstance(value, dict) else None
                claimed = set(((sub or {}).get("meta") or {}).get("profile") or [])
                if not wanted & claimed:
                    return False
                continue
            if kind in ("value", "pattern"):
                target = element if path == "$this" else profile.elements.get(f"{slice_id}.{path}")
                expected = _fixed_or_pattern(target) if target else None
                if expected is None and path == "url" and target is None:
                    urls = [p for t in element.get("type") or [] for p in t.get("profile") or []]
                    expected = ("fixed", urls[0]) if urls else None
                binding = (target or {}).get("binding") or {}
                if expected is None and binding.get("strength") == "required":
                    # the value set is the discriminator (as the HL7 validator reads it)
                    in_set = self._errors_of(
                        lambda: self._binding(value, target or {}, "")  # noqa: B023
                    )
                    known = self._codes_ok(binding["valueSet"], []) is not None
                    if known:
                        if in_set:
                            return False
                        continue
                if expected is None:  # nothing to compare: by conformance
                    return not self._errors_of(
                        lambda: self._check_value(value, element, profile, "")
                    )
                found = [value] if path == "$this" else _walk(value, path.split("."))
                if not any(
                    (v == expected[1] if expected[0] == "fixed" else _contains(v, expected[1]))
                    for v in found
                ):
                    return False
                continue
            return not self._errors_of(lambda: self._check_value(value, element, profile, ""))
        return True

    def _check_node(
        self, node: dict[str, Any], element_id: str, profile: Profile, where: str
    ) -> None:
        for name, ids in profile.children.get(element_id, {}).items():
            base_id = f"{element_id}.{name}"
            base = profile.elements.get(base_id)
            if base is None:
                continue
            values = self._values(node, name)
            here = f"{where}.{name}"
            self._cardinality(len(values), base, here)
            slices = [i for i in ids if i != base_id and "/" not in i.rsplit(":", 1)[1]]
            slicing = base.get("slicing")
            if not slices:
                for _, value in values:
                    self._check_value(value, base, profile, here)
                continue
            counts = dict.fromkeys(slices, 0)
            for key, value in values:
                chosen = next(
                    (s for s in slices if self._in_slice(key, value, s, slicing or {}, profile)),
                    None,
                )
                if chosen is None:
                    if (slicing or {}).get("rules") == "closed":
                        self.errors.append(f"{here}: {value!r} matches no slice (closed slicing)")
                    self._check_value(value, base, profile, here)
                else:
                    counts[chosen] += 1
                    self._check_value(
                        value,
                        profile.elements[chosen],
                        profile,
                        f"{here}:{chosen.rsplit(':', 1)[1]}",
                    )
            for slice_id, count in counts.items():
                self._cardinality(
                    count, profile.elements[slice_id], f"{here}:{slice_id.rsplit(':', 1)[1]}"
                )

    def _cardinality(self, count: int, element: dict[str, Any], where: str) -> None:
        low, high = element.get("min", 0), element.get("max", "*")
        if count < low:
            self.errors.append(f"{where}: {count} found, at least {low} required")
        if high != "*" and count > int(high):
            self.errors.append(f"{where}: {count} found, at most {high} allowed")

    # -- resources ------------------------------------------------------------------------
    def resource(
        self, resource: dict[str, Any], where: str = "", profiles: list[str] | None = None
    ) -> None:
        type_ = resource.get("resourceType", "?")
        where = where or f"{type_}/{resource.get('id', '')}"
        claimed = (
            profiles
            if profiles is not None
            else ((resource.get("meta") or {}).get("profile") or [])
        )
        for url in claimed:
            profile = self.profiles.get(url)
            if profile is None:
                self.errors.append(f"{where}: claims {url}, which is not in the conformance tables")
                continue
            if profile.type != type_:
                self.errors.append(f"{where}: {url} profiles {profile.type}, not {type_}")
                continue
            self._cardinality(1, profile.elements[type_], where)
            self._check_node(resource, type_, profile, where)
        for i, inner in enumerate(resource.get("contained") or []):
            self.resource(inner, f"{where}.contained[{i}]")
        for i, entry in enumerate(resource.get("entry") or []):
            if isinstance(entry.get("resource"), dict):
                inner = entry["resource"]
                self.resource(inner, f"{where}.entry[{i}]({inner.get('resourceType')})")


def _walk(value: Any, path: list[str]) -> list[Any]:
    if not path:
        return [value]
    if isinstance(value, list):
        return [v for item in value for v in _walk(item, path)]
    if not isinstance(value, dict) or path[0] not in value:
        return []
    return _walk(value[path[0]], path[1:])


def violations(resource: dict[str, Any], profiles: list[str] | None = None) -> list[str]:
    """What keeps `resource` (and the resources inside it) from its profiles, and from the base
    FHIR R4 model."""
    validator = Validator()
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except Exception as exc:
        validator.errors.append(f"base model: {exc}")
    validator.resource(resource, profiles=profiles)
    return validator.errors


def assert_conforms(resource: dict[str, Any], profiles: list[str] | None = None) -> None:
    problems = violations(resource, profiles)
    assert not problems, "\n".join(problems)
