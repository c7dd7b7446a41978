"""A local AWS for the demo, tests and benchmarks: moto on loopback, seeded like an MLSpace account."""
