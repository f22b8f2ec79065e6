"""zoo_pggan: a built-in zoo plugin, packaged like any third-party one."""
