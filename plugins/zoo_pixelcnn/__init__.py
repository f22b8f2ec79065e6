"""PixelCNN and gated PixelCNN: a zoo plugin packaged like any third-party one."""
