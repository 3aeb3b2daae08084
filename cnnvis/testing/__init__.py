"""Fixtures for tests and benchmarks: synthetic analyses with planted structure (`synthetic`) and Scenes
(`scenes`). Nothing in the library imports this package."""
