"""bridge: a 1C-Bitrix shop ↔ 1C:Enterprise integration service."""

__version__ = "0.1.0"
