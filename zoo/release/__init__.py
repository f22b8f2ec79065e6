"""Releases: model cards rendered from results, claims re-measured, release folders written, published.

The one layer that combines the harness (zoo.eval) with the Hub (zoo.hub). Importing it is cheap
(no torch, no huggingface_hub): the names below load their module on first use.

- `summary`  EvalSummary, summarize: an EvalResult reduced to what a card shows
- `card`     render_card, front_matter, default_limitations
- `claims`   read_claims, compare_claims, verify_claims, CardMetrics
- `folder`   save_pretrained, render_release_card
- `publishing`  publish, PublishResult
"""

from __future__ import annotations

from ..util import lazy_getattr

_EXPORTS = {
    "EvalSummary": "summary",
    "summarize": "summary",
    "render_card": "card",
    "front_matter": "card",
    "default_limitations": "card",
    "read_claims": "claims",
    "ClaimCheck": "claims",
    "compare_claims": "claims",
    "verify_claims": "claims",
    "CardMetrics": "claims",
    "save_pretrained": "folder",
    "render_release_card": "folder",
    "publish": "publishing",
    "PublishResult": "publishing",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return __all__
