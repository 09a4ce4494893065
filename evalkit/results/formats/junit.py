"""JUnit XML: a gate's datasets as test cases (a regression is a failure), for CI systems."""

from __future__ import annotations

from typing import Any

from evalkit.results.formats.registry import Format, register, register_format

FORMAT = register_format(Format("junit", "JUnit XML for a CI system"))


@register("gate", "junit")
def gate_junit(result: Any, **_: Any) -> str:
    """A gate's result (``results.gate.GateResult``) as JUnit XML."""
    from evalkit.results.gate import junit_xml

    return junit_xml(result)
