"""The patient's own words in a message (names, addresses), so that a text about the message
(an error kept in the archive, a dead letter's reason, a log line) can mask them. Free text
cannot be searched for names reliably; the message says exactly which ones it carries."""

from hub.base.masking import mask_name
from hub.hl7v2.message import Message

# segment -> fields that hold a person's name or address (PID-5 name, PID-6 mother's maiden
# name, PID-9 alias, PID-11 address; NK1-2 name, NK1-4 address; GT1-3 guarantor; IN1-16 insured)
_PERSONAL_FIELDS = {"PID": (5, 6, 9, 11), "NK1": (2, 4), "GT1": (3, 5), "IN1": (16, 19)}


def personal_words(message: Message) -> list[str]:
    """Every name and address text of the message, and its parts, longest first."""
    words: set[str] = set()
    for name, fields in _PERSONAL_FIELDS.items():
        for segment in message[name]:
            for number in fields:
                for repetition in range(1, len(segment.repetitions(number)) + 1):
                    parts = [segment.value(number, c, repetition=repetition) for c in range(1, 6)]
                    words.update(part for part in parts if len(part) >= 2)
                    words.add("".join(parts[:2]))  # family and given written together: 刘洋
                    words.add(segment.repetitions(number)[repetition - 1])
    return sorted((word for word in words if len(word) >= 2), key=len, reverse=True)


def mask_personal(text: str, message: Message) -> str:
    """``text`` with the message's names and addresses masked (刘洋 -> 刘*)."""
    for word in personal_words(message):
        if word in text:
            text = text.replace(word, mask_name(word))
    return text
