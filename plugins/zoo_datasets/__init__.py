"""zoo_datasets: a built-in zoo plugin, packaged like any third-party one."""
