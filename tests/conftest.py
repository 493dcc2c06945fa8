"""Every test tier: moto's transactions run with the undo log (``engine.local.aws.transactions``)."""

from engine.local.aws import transactions

transactions.install()
