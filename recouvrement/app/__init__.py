"""Use cases: the only place that wires the database, the core and the renderers together."""
