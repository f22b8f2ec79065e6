"""Registers `pixelcnn` and `gated-pixelcnn`. Imports no model code."""

import zoo
