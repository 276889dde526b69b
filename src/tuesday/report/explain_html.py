"""An explanation as HTML: its sentence, and a waterfall from the expected value through
each reason to the prediction, in the target's units (:func:`tuesday.charts.waterfall`).

Under an identity link each step of the waterfall is the feature's contribution. Under a
log or logit link contributions add up in raw-score space, not in the target's units:
the waterfall then adds the reasons one by one, largest first, and each step is the
change of the prediction it makes (the steps add up exactly; the sentence's amounts,
each reason alone taken away, do not), and the caption says so.

Example:
    >>> e = {"sentence": "Forecast 12 units.", "prediction": 12.0, "expected": 10.0,
    ...      "expected_raw": 10.0, "link": "identity", "baseline": None,
    ...      "contributions": {"a": {"shift": 2.0, "raw": 2.0, "value": 1.0, "text": "a 1"}}}
    >>> "<svg" in explanation_html(e)
    True
"""

from __future__ import annotations

import html
from typing import Any

from tuesday.charts import waterfall
from tuesday.train.explanations import number, sequential_steps

__all__ = ["explanation_html", "waterfall_svg"]


def waterfall_svg(e: dict[str, Any], *, title: str = "Why this prediction", top: int = 8,
                  binary: bool = False) -> str:
    """The waterfall of one explanation (``binary``: amounts as percentages)."""
    start, steps, end = sequential_steps(e, top=top)
    fmt = (lambda v: f"{v:.1%}") if binary else number
    return waterfall(("the model's average prediction", start), steps,
                     ("this prediction", end), title=title, value_text=fmt,
                     words=("raises the prediction", "lowers the prediction"))


def explanation_html(e: dict[str, Any], *, title: str = "Why this prediction",
                     top: int = 8, binary: bool = False) -> str:
    """The sentence, the waterfall and how to read it."""
    note = ("Each bar is what that feature adds to or takes from the prediction, in the "
            "target's units, starting from the model's average prediction over its "
            "training data.")
    if e.get("link") != "identity":
        note = ("The model works on a log or log-odds scale, so reasons multiply rather than "
                "add: the chart adds them one by one, largest first, and each bar is the "
                "change that reason makes after those above it. The amounts in the sentence "
                "are each reason alone taken away.")
    out = [f'<p class="sentence">{html.escape(e["sentence"])}</p>',
           waterfall_svg(e, title=title, top=top, binary=binary),
           f'<p class="note">{html.escape(note)}</p>']
    return "\n".join(out)
