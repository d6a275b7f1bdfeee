"""The features and the outbound adapters of this hub, one line each. Each declares itself in
its own package (``plugin.py``); the settings, the routing table, the runtime, the web app, the
CLI and ``jianhu trace`` take them from here."""

from adapters.framework.plugin import AdapterPlugin
from adapters.registry import PLUGINS
from hub.destinations.plugin import PLUGIN as DESTINATIONS
from hub.intake.plugin import PLUGIN as AMQP_INTAKE
from hub.lab.plugin import PLUGIN as LAB
from hub.orders.plugin import PLUGIN as ORDERS
from hub.plugin import FeaturePlugin

FEATURES: tuple[FeaturePlugin, ...] = (AMQP_INTAKE, DESTINATIONS, ORDERS, LAB)
ADAPTERS: tuple[AdapterPlugin, ...] = PLUGINS
