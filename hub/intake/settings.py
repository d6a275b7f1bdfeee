"""Who may publish to the hub over AMQP, and what (``JIANHU_AMQP_INTAKE__*``; docs/amqp.md).

A sender is named by the ``app_id`` of its messages. ``app_id`` alone proves nothing, so a
sender also names the RabbitMQ users it publishes as: a message must carry ``user_id``, which
RabbitMQ itself checks against the user of the connection it came on (a forged one closes the
publisher's channel). With no sender configured the intake takes nothing.
"""

from fnmatch import fnmatchcase

from pydantic import BaseModel, Field

from hub.bus.topology import topic_matches
from hub.hl7v2.settings import ListenerSettings

HL7V2_KEY = "hl7v2"
FHIR_KEYS = "fhir.*"


class AmqpSender(BaseModel, frozen=True):
    # RabbitMQ users whose messages may carry this app_id; empty: user_id is not checked
    # (only for a broker whose every user is a trusted system)
    users: tuple[str, ...] = ()
    # routing keys (AMQP topic patterns) this sender may publish with: HL7 v2, FHIR, or both
    accepts: tuple[str, ...] = (HL7V2_KEY, FHIR_KEYS)
    # what its FHIR messages may do, as SMART scopes (a system's, by default everything)
    scopes: str = "system/*.*"
    # MSH-3 (or MSH-3^MSH-4) its HL7 v2 messages may name; empty: the app_id itself
    hl7_applications: tuple[str, ...] = ()
    # queues its reply_to may name (shell patterns; "{app_id}" stands for its app_id): RabbitMQ's
    # direct reply-to, which only the asking connection reads, and queues named after the sender
    # (which its broker permissions let only it create); never another system's queue
    reply_queues: tuple[str, ...] = ("amq.rabbitmq.reply-to.*", "{app_id}.*")

    def may_reply_to(self, app_id: str, queue: str) -> bool:
        patterns = (pattern.replace("{app_id}", app_id) for pattern in self.reply_queues)
        return any(fnmatchcase(queue, pattern) for pattern in patterns)

    def accepts_key(self, routing_key: str) -> bool:
        return any(topic_matches(pattern, routing_key) for pattern in self.accepts)


class AmqpIntakeSettings(BaseModel):
    senders: dict[str, AmqpSender] = Field(default_factory=dict)
    # HL7 v2 over AMQP: character sets, processing id and limits, as for an MLLP listener
    # (its allowed senders are each sender's ``hl7_applications``, its peers are not used)
    hl7: ListenerSettings = ListenerSettings(name="amqp")

    def listener_for(self, app_id: str, sender: AmqpSender) -> ListenerSettings:
        applications = sender.hl7_applications or (app_id,)
        return self.hl7.model_copy(update={"allowed_senders": applications, "allowed_peers": ()})
