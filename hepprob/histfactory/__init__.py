"""HistFactory models: pyhf JSON workspaces (being written)."""

__all__: list[str] = []
