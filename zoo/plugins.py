"""The plugin manager: entry points, isolation, allow and deny lists.

The built-in plugins (`zoo_pixelcnn`, `zoo_pixelrnn`, `zoo_gan`, ...) are
declared as entry points in the group `zoo` by this distribution, exactly as a
third-party package declares its own, and load through the same path.

Environment:
- `ZOO_PLUGINS=a,b`: load only these entry points (an allow list).
- `ZOO_DISABLE_PLUGINS=c,d`: never load these.

A plugin that fails to import or to register is reported (a `ZooPluginWarning`
and a line in `zoo plugins`) and skipped; the others work. "Fails" covers any
exception a plugin raises, `SystemExit` included (only `KeyboardInterrupt` passes).
A name in `ZOO_PLUGINS` or `ZOO_DISABLE_PLUGINS` that no plugin has is a warning
with close matches. When a plugin registers a name another plugin already has, the
first one keeps it (the built-in plugins register before any other), the newcomer's
entry is skipped, and a warning and `zoo plugins` name the newcomer to disable.
"""

from __future__ import annotations

import contextlib
import os
import re
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .registry import ModelSpec, with_plugin
from .util import did_you_mean

__all__ = [
    "PluginHost",
    "PluginInfo",
    "Registry",
    "ZooPluginWarning",
    "get_host",
    "get_registry",
    "reset",
    "use_plugins",
]

GROUP = "zoo"
KINDS = ("models", "datasets", "metrics")
IN_PROCESS = "registered in-process"  # PluginInfo.source of a plugin passed to PluginHost(plugins=...)


class ZooPluginWarning(UserWarning):
    """A plugin failed to load or register and was skipped."""


@dataclass
class PluginInfo:
    """What `zoo plugins` shows about one plugin."""

    name: str
    source: str  # "entry point <dist> <version>" or IN_PROCESS
    module: str
    status: str = "ok"  # "ok", "failed", "disabled"
    error: str = ""
    traceback: str = ""  # of the failure, for `zoo plugins -v`
    skipped: list[str] = field(default_factory=list)  # entries not registered: another plugin had the name
    registered: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "module": self.module,
            "status": self.status,
            "error": self.error,
            "traceback": self.traceback,
            "skipped": self.skipped,
            "registered": self.registered,
        }


@dataclass
class Registry:
    """What the loaded plugins registered, by kind and name."""

    models: dict[str, ModelSpec] = field(default_factory=dict)
    datasets: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> plugin


def _normalise(dist_name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503): `Likelihood_Zoo` -> `likelihood-zoo`."""
    return re.sub(r"[-_.]+", "-", dist_name).lower()


def _csv(value: str | None) -> set[str]:
    return {p.strip() for p in (value or "").split(",") if p.strip()}


def _check_entry(kind: str, obj: Any) -> str:
    if kind == "models":
        if not isinstance(obj, ModelSpec):
            raise TypeError(f"register() for models takes a zoo.ModelSpec, got {type(obj).__name__}")
        return obj.name
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"register() for {kind} takes an object with a non-empty str `name`, got {obj!r}")
    return name


# what a plugin may raise and still be contained: anything but an interrupt by the user
# (a plugin calling sys.exit() at import must not end every zoo command)
PLUGIN_FAULTS = (Exception, SystemExit)

# the distribution that ships the built-in plugins; they register first and keep their names
BUILTIN_DIST = "likelihood-zoo"


class PluginHost:
    """One plugin manager: loads entry points once and builds the registry on first use."""

    def __init__(
        self,
        *,
        entry_points: bool = True,
        plugins: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.allow = _csv(env.get("ZOO_PLUGINS"))
        self.deny = _csv(env.get("ZOO_DISABLE_PLUGINS"))
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self._registry: Registry | None = None
        if entry_points:
            self._load_entry_points()
        for name, plugin in (plugins or {}).items():
            self._register(name, plugin, source=IN_PROCESS, module=getattr(plugin, "__name__", repr(plugin)))
        self._warn_unknown_names(env)

    def _warn_unknown_names(self, env: Mapping[str, str]) -> None:
        """A name in the allow or deny list that no plugin has is most likely a typo: say so."""
        known = sorted(self.info)
        for var, names in (("ZOO_PLUGINS", self.allow), ("ZOO_DISABLE_PLUGINS", self.deny)):
            for name in sorted(names - set(known)):
                warnings.warn(
                    f"zoo: {var} names {name!r}, which is no installed plugin{did_you_mean(name, known)} "
                    f"(plugins: {', '.join(known) or 'none'})",
                    ZooPluginWarning,
                    stacklevel=3,
                )

    # -- loading ---------------------------------------------------------
    def _enabled(self, name: str) -> bool:
        return name not in self.deny and (not self.allow or name in self.allow)

    def _fail(self, name: str, error: BaseException, what: str) -> None:
        info = self.info[name]
        info.status = "failed"
        info.error = f"{type(error).__name__}: {error}"
        info.traceback = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        warnings.warn(
            f"zoo: plugin {name!r} failed to {what} and was skipped: {info.error}", ZooPluginWarning, stacklevel=3
        )

    def _load_entry_points(self) -> None:
        seen: set[str] = set()

        def builtin_first(ep: Any) -> tuple[bool, str]:
            dist = getattr(ep, "dist", None)
            return (_normalise(getattr(dist, "name", None) or "") != BUILTIN_DIST, ep.name)

        for ep in sorted(metadata.entry_points(group=GROUP), key=builtin_first):
            if ep.name in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add(ep.name)
            dist = getattr(ep, "dist", None)
            source = f"entry point of {dist.name} {dist.version}" if dist is not None else "entry point"
            self.info[ep.name] = PluginInfo(ep.name, source, ep.value)
            if not self._enabled(ep.name):
                self.info[ep.name].status = "disabled"
                continue
            try:
                plugin = ep.load()
            except PLUGIN_FAULTS as e:  # a broken plugin must not break the zoo
                self._fail(ep.name, e, "import")
                continue
            self._register(ep.name, plugin, source=source, module=ep.value)

    def _register(self, name: str, plugin: Any, *, source: str, module: str) -> None:
        self.info.setdefault(name, PluginInfo(name, source, module))
        try:
            self.pm.register(plugin, name=name)
        except PLUGIN_FAULTS as e:
            self._fail(name, e, "register")

    # -- registry ----------------------------------------------------------
    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = self._build_registry()
        return self._registry

    def _impls(self, hook_name: str) -> dict[str, Callable[..., Any]]:
        hook = getattr(self.pm.hook, hook_name)
        return {impl.plugin_name: impl.function for impl in hook.get_hookimpls()}

    def _build_registry(self) -> Registry:
        reg = Registry()
        hooks = {kind: self._impls(f"zoo_register_{kind}") for kind in KINDS}
        for name, info in self.info.items():
            if info.status != "ok":
                continue
            staged: dict[str, list[Any]] = {k: [] for k in KINDS}
            try:
                for kind in KINDS:
                    fn = hooks[kind].get(name)
                    if fn is None:
                        continue

                    def register(obj: Any, _kind: str = kind, _staged: dict = staged) -> None:
                        _check_entry(_kind, obj)
                        _staged[_kind].append(obj)

                    fn(register=register)
            except PLUGIN_FAULTS as e:
                self._fail(name, e, "register")
                continue
            for kind in KINDS:
                table = getattr(reg, kind)
                for obj in staged[kind]:
                    key = _check_entry(kind, obj)
                    owner = reg.owners.get((kind, key))
                    if owner is not None:
                        self._skip(name, kind, key, owner)
                        continue
                    reg.owners[(kind, key)] = name
                    table[key] = with_plugin(obj, name) if kind == "models" else obj
                    info.registered[kind].append(key)
        return reg

    def _skip(self, name: str, kind: str, key: str, owner: str) -> None:
        """`name` registered `key`, which `owner` (registered earlier) already has: keep the owner's."""
        singular = kind[:-1]
        if owner == name:
            why = f"plugin {name!r} registers {singular} name {key!r} twice; the second one was skipped"
        else:
            why = (
                f"plugin {name!r} registers {singular} name {key!r}, which plugin {owner!r} already registered; "
                f"{owner!r}'s is kept and {name!r}'s skipped (rename it in {name!r}, or disable that plugin "
                f"with ZOO_DISABLE_PLUGINS={name})"
            )
        self.info[name].skipped.append(f"{singular} {key!r} (already registered by {owner!r})")
        warnings.warn(f"zoo: {why}", ZooPluginWarning, stacklevel=4)

    def register_commands(self, cli: Any) -> None:
        """Let every plugin add its commands to the CLI group `cli`."""
        for name, fn in self._impls("zoo_register_commands").items():
            try:
                fn(cli=cli)
            except PLUGIN_FAULTS as e:
                self._fail(name, e, "add its commands")

    def plugins(self) -> list[PluginInfo]:
        _ = self.registry  # registration errors show up in the listing too
        return [self.info[k] for k in sorted(self.info)]


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, created on first use."""
    global _HOST
    if _HOST is None:
        _HOST = PluginHost()
    return _HOST


def get_registry() -> Registry:
    return get_host().registry


def reset() -> None:
    """Forget the loaded plugins; the next lookup loads them again (e.g. after pip install)."""
    global _HOST
    _HOST = None


@contextlib.contextmanager
def use_plugins(
    plugins: Mapping[str, Any] | None = None, *, entry_points: bool = True, environ: Mapping[str, str] | None = None
) -> Iterator[PluginHost]:
    """Temporarily use a host with extra in-process `plugins` (name -> module/object). For tests."""
    global _HOST
    saved = _HOST
    _HOST = PluginHost(entry_points=entry_points, plugins=plugins, environ=environ)
    try:
        yield _HOST
    finally:
        _HOST = saved
