"""OCSF constants kmo emits, pinned to one schema version.

Why pinned: OCSF evolves and consumers (SIEMs, Security Lake) validate against a version; drift
between flavours is real (ocsf-lib-py exists to bridge it). ``type_uid`` is always derived, never
typed in by hand, because hand-typed enums drift (py-ocsf-models once shipped ``Other = 200404``).
"""

from __future__ import annotations

from enum import IntEnum

OCSF_VERSION = "1.5.0"


class Category(IntEnum):
    """OCSF categories used by kmo."""

    FINDINGS = 2
    IAM = 3
    APPLICATION = 6


class EventClass(IntEnum):
    """OCSF event classes used by kmo, with their category derived from the uid."""

    DETECTION_FINDING = 2004
    ENTITY_MANAGEMENT = 3004  # key lifecycle: create, rotate, enable, disable, destroy, policy
    API_ACTIVITY = 6003  # key usage and reads: encrypt, decrypt, sign, describe, list

    @property
    def category(self) -> Category:
        return Category(self.value // 1000)


class ApiActivity(IntEnum):
    """API Activity (6003) activity ids."""

    UNKNOWN = 0
    CREATE = 1
    READ = 2
    UPDATE = 3
    DELETE = 4
    OTHER = 99


class EntityActivity(IntEnum):
    """Entity Management (3004) activity ids."""

    UNKNOWN = 0
    CREATE = 1
    READ = 2
    UPDATE = 3
    DELETE = 4
    MOVE = 5
    ENROLL = 6
    UNENROLL = 7
    ENABLE = 8
    DISABLE = 9
    ACTIVATE = 10
    DEACTIVATE = 11
    SUSPEND = 12
    RESUME = 13
    OTHER = 99


class StatusId(IntEnum):
    """Base-event ``status_id``."""

    UNKNOWN = 0
    SUCCESS = 1
    FAILURE = 2


class SeverityId(IntEnum):
    """Base-event ``severity_id``."""

    UNKNOWN = 0
    INFORMATIONAL = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5
    FATAL = 6


def type_uid(class_uid: int, activity_id: int) -> int:
    """OCSF's rule: ``type_uid = class_uid * 100 + activity_id``."""
    return class_uid * 100 + activity_id
