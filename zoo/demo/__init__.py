"""`zoo demo`: a local page to sample, complete and score drawings with the released models.

`logic` does the work through the public API and knows no web; `server` serves `page.html` and
turns the page's requests into calls of `logic` (Python's standard library only, so the demo
needs nothing beyond the zoo itself and works offline on the bundled weights).
"""

from .logic import Demo, Score
from .server import make_server

__all__ = ["Demo", "Score", "make_server"]
