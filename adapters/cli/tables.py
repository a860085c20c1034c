"""Boxed tables like the reference CLI's: +----+ borders, centred headers, left-aligned cells."""

from __future__ import annotations


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) if c is not None else "" for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) + 2 for i, h in enumerate(headers)]
    rule = "+" + "+".join("-" * w for w in widths) + "+"
    head = "|" + "|".join(h.center(w) for h, w in zip(headers, widths)) + "|"
    body = ["|" + "|".join(" " + c.ljust(w - 1) for c, w in zip(r, widths)) + "|" for r in cells]
    return "\n".join([rule, head, rule, *body, rule])
