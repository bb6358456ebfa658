"""Every coloured badge and panel in the stylesheets meets WCAG AA contrast (4.5:1)."""

from __future__ import annotations

import re
from pathlib import Path

import maintainpro.web

STATIC = Path(maintainpro.web.__file__).parent / "static"
RULE = re.compile(r"([^{}]+)\{([^}]*)\}")
BACKGROUND = re.compile(r"background(?:-color)?:\s*(#[0-9a-fA-F]{3,6})\b")
FOREGROUND = re.compile(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{3,6}|var\(--[\w-]+\))")
VARIABLE = re.compile(r"--([\w-]+):\s*(#[0-9a-fA-F]{3,6})\b")


def _luminance(colour: str) -> float:
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_formula() -> None:
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert contrast("#777777", "#ffffff") < 4.5


def test_every_rule_with_both_colours_meets_aa() -> None:
    css = "".join(p.read_text(encoding="utf-8") for p in sorted(STATIC.glob("*.css")))
    variables = {f"var(--{name})": value for name, value in VARIABLE.findall(css)}
    checked = []
    for selector, body in RULE.findall(css):
        background, foreground = BACKGROUND.search(body), FOREGROUND.search(body)
        if not (background and foreground):
            continue
        colour = variables.get(foreground.group(1), foreground.group(1))
        ratio = contrast(background.group(1), colour)
        checked.append(selector.strip())
        assert ratio >= 4.5, f"{selector.strip()}: {ratio:.2f}:1"
    assert len(checked) >= 10, "the stylesheets define the badges this test is about"
