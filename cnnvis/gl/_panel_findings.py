"""The panel's findings section: the Scene's findings grouped by kind and layer cluster, with counts, so a
model with 80 findings reads as a dozen groups. The groups are listed first; a click on one opens it (a
group of one shows its finding at once), and its findings are listed with a back button. Showing a finding
(`ViewState.finding`) opens its group. Pure: Widgets from (Scene, ViewState); the controller turns their
actions into viewer actions."""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

from cnnvis.gl._names import abbreviate
from cnnvis.gl._text import text_width
from cnnvis.gl._widgets import GAP, MARGIN, ROW, Widget, list_rows

__all__ = ["FindingGroup", "finding_groups", "group_of", "findings_section", "finding_tip", "widget_tip",
           "EXPAND_HINT"]

EXPAND_HINT = "expand the column to see its neurons"
_HEADING = 22.0   # the section heading's line (as the panel's headings)
ROW_PAD = 40.0    # a list button's label room less than its width (padding, the scroll column)


@dataclass(frozen=True)
class FindingGroup:
    """Findings of one kind in one layer cluster (column -1: about the model or no column), most severe
    first; `numbers` are FindingMark numbers."""
    kind: str
    column: int
    label: str
    numbers: tuple


def finding_groups(scene) -> list[FindingGroup]:
    """The Scene's findings grouped by (kind, column), in the order of each group's most severe finding."""
    groups: dict = {}
    for m in scene.findings:
        groups.setdefault((m.kind, m.column), []).append(m.number)
    names = scene.column_names
    out = []
    for (kind, col), numbers in groups.items():
        where = str(names[col]) if 0 <= col < len(names) else "model"
        out.append(FindingGroup(kind, col, f"{kind} \u00b7 {where}", tuple(numbers)))
    return out


def group_of(scene, number: int) -> tuple:
    """(index of the group holding finding `number`, its row in that group), (-1, 0) when none does."""
    for g, group in enumerate(finding_groups(scene)):
        if number in group.numbers:
            return g, group.numbers.index(number)
    return -1, 0


def finding_tip(m) -> str:
    """Tooltip of a finding's panel row, one line each: title and severity, the full message (wrapped),
    the neurons' layer where they need an expand, what a click does."""
    return "\n".join((f"{m.title}  [{m.severity}]", *textwrap.wrap(m.message, 64),
                      *((f"its neurons are {m.layer}'s: {EXPAND_HINT}",) if m.n_unplaced else ()),
                      "click: zoom to it and show its evidence (again: clear)"))


def _group_tip(scene, group: FindingGroup) -> str:
    marks = {m.number: m for m in scene.findings}
    first = [f"{n}. {marks[n].title}" for n in group.numbers[:4]]
    more = (f"... and {len(group.numbers) - 4} more",) if len(group.numbers) > 4 else ()
    return "\n".join((f"{len(group.numbers)} {group.label}", *first, *more,
                      "click: list them" if len(group.numbers) > 1 else "click: show it"))


def widget_tip(widget, at) -> tuple:
    """(tooltip lines, where) of a panel widget hovered at canvas point `at`. A findings row's tooltip goes
    left of the panel, level with the pointer, so that it covers neither the list nor the panel's labels."""
    lines = tuple(widget.tip.split("\n"))
    if not (widget.action and widget.action[0] in ("finding", "finding_step", "finding_group")):
        return lines, at
    w = max(text_width(t, 12) for t in lines) + 16   # the overlay's tooltip width
    return lines, (widget.box[0] - MARGIN - w - 22, at[1])   # the overlay puts the box 14 px right of `at`


def findings_section(out: list, state, scene, x0: float, x1: float, y: float, rows: int) -> float:
    """Append the findings section to `out` from height y down, `rows` rows of list; returns the new y.
    When no two findings share a kind and a layer cluster, the findings are listed as they are."""
    marks = scene.findings
    groups = finding_groups(scene)
    flat = len(groups) == len(marks)   # no two alike: the findings themselves, no groups
    g = state.finding_group if 0 <= state.finding_group < len(groups) and not flat else -1
    y -= _HEADING
    b = 18.0
    if flat:
        head = f"FINDINGS ({len(marks)})"
        items = [(m.title, ("finding", m.number), state.finding == m.number, True, finding_tip(m)) for m in marks]
    elif g < 0:
        head = f"FINDINGS: {len(marks)} IN {len(groups)} GROUPS" if len(groups) < len(marks) else \
            f"FINDINGS ({len(marks)})"
        items = [(f"{len(gr.numbers)}\u00d7 {gr.kind} \u00b7 " if len(gr.numbers) > 1 else f"{gr.kind} \u00b7 ",
                  gr) for gr in groups]
        items = [(prefix + abbreviate(gr.label.split(" \u00b7 ", 1)[1], x1 - x0 - ROW_PAD - text_width(prefix, 11.0),
                                      11.0),
                  ("finding_group", i), any(n == state.finding for n in gr.numbers), True, _group_tip(scene, gr))
                 for i, (prefix, gr) in enumerate(items)]
    else:
        gr = groups[g]
        head = f"{gr.label.upper()}: {len(gr.numbers)}"
        by_number = {m.number: m for m in marks}
        items = [(by_number[n].title, ("finding", n), state.finding == n, True, finding_tip(by_number[n]))
                 for n in gr.numbers]
        out.append(Widget("button", "all", (x1 - 3 * b - 2 * GAP - 16, y - 3, x1 - 2 * b - 2 * GAP, y - 3 + b),
                          ("finding_group", -1), tip="back to every group of findings"))
    out.append(Widget("heading", head, (x0, y, x1 - 3 * b - 3 * GAP - 16, y + 14)))
    if len(marks) > rows:   # the pager, when the list does not show every finding
        out.append(Widget("button", "<", (x1 - 2 * b - GAP, y - 3, x1 - b - GAP, y - 3 + b), ("finding_step", -1),
                          tip="previous finding (opens its group)"))
        out.append(Widget("button", ">", (x1 - b, y - 3, x1, y - 3 + b), ("finding_step", +1),
                          tip="next finding (opens its group)"))
    y -= 6
    end = list_rows(out, items, per_row=1, rows=rows, first=state.finding_scroll, field="finding_scroll",
                    x0=x0, x1=x1, y=y)
    # the section keeps its height whichever list shows, so the controls under it stay put
    return min(end, y - rows * (ROW + GAP) + GAP) if rows else end

