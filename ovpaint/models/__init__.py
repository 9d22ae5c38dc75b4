"""Everything that touches torch weights: registry, downloads, the ModelManager, tiny profile.

Nothing here loads a model at import time; :class:`ovpaint.models.manager.ModelManager` loads
lazily on first use.
"""
