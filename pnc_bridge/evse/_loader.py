"""Loading a charger maker's own ``EvseDriver`` from the configuration.

``[driver] kind = "python"`` names a factory as ``"package.module:callable"``; the service
imports it once and calls it for every EVSE with keyword arguments:

    factory(evse_id=1, limits=EvseLimits(...), ac=False, options={...}) -> EvseDriver

``options`` is the ``[driver.options]`` table, passed through untouched (bus addresses,
device paths: whatever the hardware needs). The factory may return any object with the
``EvseDriver`` methods (``BidirectionalEvseDriver`` for V2X); nothing has to inherit from
anything here. Every problem (module missing, name missing, not callable, the factory
raising, an object without the driver's methods) is a ``DriverLoadError`` naming the
factory and what is wrong, which the service reports as a configuration error.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

from pnc_bridge.evse._driver import EvseDriver, EvseLimits

__all__ = ["DriverLoadError", "import_factory", "make_driver", "missing_methods"]


class DriverLoadError(Exception):
    """The configured driver factory cannot be used; the message says why."""


def import_factory(spec: str) -> Callable[..., Any]:
    """The callable named by ``"package.module:callable"`` (dots after the colon walk attributes)."""
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path:
        raise DriverLoadError(f"driver factory {spec!r}: expected 'package.module:callable'")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise DriverLoadError(f"driver factory {spec!r}: cannot import {module_name}: {exc}") from exc
    except Exception as exc:  # the module itself fails while importing
        raise DriverLoadError(f"driver factory {spec!r}: importing {module_name} failed: "
                              f"{type(exc).__name__}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise DriverLoadError(f"driver factory {spec!r}: {module_name} has no {attr_path}") from None
    if not callable(target):
        raise DriverLoadError(f"driver factory {spec!r}: {attr_path} is not callable")
    return target


def missing_methods(driver: object) -> list[str]:
    """The ``EvseDriver`` members ``driver`` lacks (empty: it is a driver)."""
    members = [name for name, _ in inspect.getmembers(EvseDriver) if not name.startswith("_")]
    members += [name for name in getattr(EvseDriver, "__protocol_attrs__", ()) if name not in members]
    return sorted(name for name in set(members) if not hasattr(driver, name))


def make_driver(factory: Callable[..., Any], spec: str, *, evse_id: int, limits: EvseLimits, ac: bool,
                options: dict[str, Any]) -> EvseDriver:
    """Call the factory for one EVSE and check that what it returns is a driver."""
    try:
        driver = factory(evse_id=evse_id, limits=limits, ac=ac, options=dict(options))
    except Exception as exc:
        raise DriverLoadError(f"driver factory {spec!r} failed for EVSE {evse_id}: {type(exc).__name__}: {exc}") from exc
    missing = missing_methods(driver)
    if missing:
        raise DriverLoadError(f"driver factory {spec!r} returned {type(driver).__name__} for EVSE {evse_id}, "
                              f"which lacks the EvseDriver member(s): {', '.join(missing)}")
    return driver  # type: ignore[no-any-return]
