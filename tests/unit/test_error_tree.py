"""Every exception class the hub defines is in the one error tree (``hub.base.errors``), so the
bus, the ledger and the APIs decide what to do by class: retry, dead letter, or a 4xx."""

import importlib
import inspect
import pkgutil

from hub.base.errors import JianhuError, PermanentError, RetryableError

PACKAGES = ("hub", "store", "adapters", "fhir_profiles", "routes")


def defined_exceptions() -> list[type[BaseException]]:
    found = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            module = importlib.import_module(info.name)
            for _, value in inspect.getmembers(module, inspect.isclass):
                if issubclass(value, BaseException) and value.__module__ == info.name:
                    found.append(value)
    return found


def test_every_exception_of_ours_is_in_the_tree() -> None:
    classes = defined_exceptions()
    assert len(classes) > 30  # the modules were found at all
    outside = [
        f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, JianhuError)
    ]
    assert outside == []


def test_whether_to_retry_is_said_by_the_class() -> None:
    from adapters.framework.transport import TransportError
    from hub.base.errors import MappingError
    from hub.hl7v2.mapping.common import UnmappedMessageError

    assert issubclass(TransportError, RetryableError)
    assert issubclass(MappingError, PermanentError)
    assert issubclass(MappingError, ValueError)
    assert issubclass(UnmappedMessageError, PermanentError)
