"""Exchange adapters: the ``ExchangeGateway`` port, the ccxt gateway and the paper exchange.

The only package that talks to ccxt, and only lazily: importing any ``engine.exchange`` module does
not import ccxt. Import the submodules directly (``engine.exchange.gateway``, ``.errors``, ``.paper``,
``.ccxt_gateway``, ``.factory``...); this package file re-exports nothing so it stays cheap.
"""
