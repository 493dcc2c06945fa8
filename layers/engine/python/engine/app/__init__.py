"""The engine's use cases, one package per job, read top to bottom as the life of a signal.

``intake`` (a signal becomes a group, a pyramid or a queued entry) → ``execution`` (the only code that
sends orders) → ``positions`` (fills become figures and take-profits; closing) → ``pool`` (a freed slot
promotes a queued signal); ``sync`` and ``risk`` drive them from the clock; ``operator`` serves the
operator API. ``shared`` holds what several of them need and imports none of them; ``context`` is the
engine context each handler builds and passes down.

A use case reaches another only through that package's ``__init__``.
"""
