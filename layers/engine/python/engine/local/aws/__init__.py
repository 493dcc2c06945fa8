"""The local AWS: a serialised moto server and the housekeeping that keeps its costs flat."""
